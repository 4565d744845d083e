//! The training loop over an engine of K ≥ 1 models.

use std::time::Instant;

use super::config::{TrainConfig, TrainData};
use super::divergence::{loss_divergence, loss_limit, reference_rows};
use super::feed::{Feed, place};
use super::length::{RunPlan, check_data, check_schedule};
use super::report::{
    Divergence, EpochRecord, ModelRun, Observer, Progress, Start, Stop, TrainReport,
};
use super::state::{self, Resumed, Standing, tolerated};
use crate::accumulate::Part;
use crate::checkpoint::TrainingState;
use crate::data::Dataset;
use crate::engine::{Engine, Metrics};
use crate::error::{Error, Result};
use crate::loss::Batch;

/// Refuses what only a run of one model does (early stopping, training states, resume): for an
/// engine of several models, and for every sweep.
pub(crate) fn refuse_single_run_options(config: &TrainConfig, resume: bool) -> Result<()> {
    if config.early_stopping.is_some() {
        return Err(Error::Usage(
            "a sweep trains every model for the whole run; early stopping is for a single run \
             (train)"
                .into(),
        ));
    }
    if config.checkpoint.is_some() || resume {
        return Err(Error::Usage(
            "a sweep writes no training-state checkpoints; resumable runs are for a single \
             model (train)"
                .into(),
        ));
    }
    Ok(())
}

/// Trains every model of `engine` on `data` for the run `config` describes, validating each on
/// `val` after every epoch, from the start or (one model) from `resume`. The schedule scales
/// each model's own rate. A model that diverges is frozen and the others go on; the run stops
/// when every model has, and a single model's divergence is [`Error::Diverged`].
pub fn train(
    engine: &mut dyn Engine,
    data: &TrainData,
    val: Option<&Dataset>,
    config: &TrainConfig,
    resume: Option<&TrainingState>,
    observer: &mut dyn Observer,
) -> Result<TrainReport> {
    run(engine, data, val, config, resume, observer, false)
}

/// [`train`], where with `freeze_alone` a single model's divergence is frozen and reported as
/// with many models (a sweep's rule) rather than an error.
pub(crate) fn run(
    engine: &mut dyn Engine,
    data: &TrainData,
    val: Option<&Dataset>,
    config: &TrainConfig,
    resume: Option<&TrainingState>,
    observer: &mut dyn Observer,
    freeze_alone: bool,
) -> Result<TrainReport> {
    let models = engine.models();
    if models > 1 {
        refuse_single_run_options(config, resume.is_some())?;
    }
    let setups: Vec<_> = (0..models).map(|k| engine.setup(k)).collect();
    // Refuse data that does not fit the model before any work (so that falling back from resident
    // to streamed data below can only be about the device's capacity).
    check_data(&setups[0], data, val)?;
    let plan = RunPlan::new(data, config)?;
    check_batch_statistics(&setups[0].model, &plan)?;
    let total = plan.total;
    for setup in &setups {
        check_schedule(&setup.optimizer, config, plan.steps_per_epoch, total)?;
    }
    let base_lrs: Vec<f64> = setups.iter().map(|s| s.optimizer.lr()).collect();
    engine.set_clip_norm(config.clip_norm)?;
    engine.set_mask_seed(config.seed);
    let Resumed {
        first,
        mut best,
        mut stale,
    } = match resume {
        Some(state) => state::restore(engine, state, &plan, config, observer)?,
        None => Resumed {
            first: 0,
            best: None,
            stale: 0,
        },
    };

    let streamed_because = place(config.residency, data, |d| engine.load_resident(d))?;
    let resident = streamed_because.is_none();
    let mut feed = Feed::new(
        data,
        plan.order,
        resident,
        plan.position(first),
        plan.batches_between(first, total),
    );
    let checksum = match (resume, &config.checkpoint) {
        (None, None) => String::new(),
        _ => data.source().checksum()?,
    };
    if let Some(state) = resume
        && state.data_checksum != checksum
    {
        observer.data_changed(&state.data_checksum, &checksum);
    }
    let limits: Vec<Option<f64>> = match config.divergence_threshold {
        Some(_) => {
            let (features, targets) = reference_rows(data)?;
            engine
                .evaluate(&Batch::new(features.view(), targets.view()))?
                .iter()
                .map(|m| loss_limit(config.divergence_threshold, m.loss()))
                .collect()
        }
        None => vec![None; models],
    };
    observer.started(&Start {
        streamed_because: streamed_because.as_deref(),
        first_step: first,
        total_steps: total,
        batches: plan.batches_between(first, total),
    });

    let loss_kind = setups[0].loss;
    let mut runs = vec![ModelRun::default(); models];
    let mut epoch_metrics = vec![Metrics::default(); models];
    let mut since = vec![Metrics::default(); models];
    let started = Instant::now();
    let mut epoch_started = Instant::now();
    let mut rows_trained = 0usize;
    let mut stop = Stop::Completed;
    let mut step = first;
    let mut lrs = base_lrs.clone();
    let mut state_failure = None;
    while step < total {
        let (epoch, first_batch, count) = plan.group(step);
        for (lr, &base) in lrs.iter_mut().zip(&base_lrs) {
            *lr = config.schedule.lr(base, step, plan.steps_per_epoch, total);
        }
        engine.set_learning_rates(&lrs)?;
        let group_rows = plan.group_rows(step);
        for i in 0..count {
            let part = Part::of(i, count, group_rows);
            feed.next(epoch, first_batch + i, |input| {
                input.accumulate(engine, part)
            })?;
        }
        step += 1;
        rows_trained += group_rows;
        let epoch_done = step.is_multiple_of(plan.steps_per_epoch) || step == total;
        let log_point = step.is_multiple_of(config.log_every.max(1));
        let checkpoint_point = config
            .checkpoint
            .as_ref()
            .is_some_and(|c| c.every_steps > 0 && step.is_multiple_of(c.every_steps));
        if epoch_done || log_point || checkpoint_point {
            // Read every model's metrics back, freezing the models that diverged.
            for (k, m) in engine.take_metrics()?.into_iter().enumerate() {
                if runs[k].diverged.is_some() {
                    continue;
                }
                if let Some(what) = loss_divergence(&m, limits[k], config.divergence_threshold) {
                    if models == 1 && !freeze_alone {
                        return Err(Error::Diverged {
                            step,
                            what,
                            lr: lrs[0],
                            // A tenth of the rate the run was given (--lr), whatever the
                            // schedule made of it.
                            suggested: base_lrs[0] / 10.0,
                        });
                    }
                    let divergence = Divergence { step, what };
                    observer.diverged(k, &divergence);
                    runs[k].diverged = Some(divergence);
                    engine.freeze(k)?;
                    continue;
                }
                for total in [&mut epoch_metrics[k], &mut since[k]] {
                    total.loss_sum += m.loss_sum;
                    total.rows += m.rows;
                    total.correct += m.correct;
                }
            }
            if epoch_done || log_point {
                let losses = runs
                    .iter()
                    .zip(&since)
                    .map(|(run, m)| {
                        if run.diverged.is_some() {
                            f64::NAN
                        } else {
                            m.loss()
                        }
                    })
                    .collect();
                for (run, m) in runs.iter_mut().zip(&mut since) {
                    if run.diverged.is_none() && m.rows > 0 {
                        run.curve.push((step, m.loss()));
                    }
                    *m = Metrics::default();
                }
                observer.progress(&Progress {
                    step,
                    total_steps: total,
                    epoch: epoch + 1,
                    losses,
                    samples_per_second: rows_trained as f64 / started.elapsed().as_secs_f64(),
                    epoch_end: epoch_done,
                });
            }
        }
        if epoch_done {
            let seconds = epoch_started.elapsed().as_secs_f64();
            let validation = match val {
                Some(v) => Some(engine.evaluate(&Batch::new(v.features.view(), v.targets.view()))?),
                None => None,
            };
            let mut records = Vec::new();
            for (k, run) in runs.iter_mut().enumerate() {
                if run.diverged.is_some() {
                    continue;
                }
                let m = epoch_metrics[k];
                let v = validation.as_ref().map(|v| v[k]);
                let record = EpochRecord {
                    epoch: epoch + 1,
                    step,
                    lr: lrs[k],
                    train_loss: m.loss(),
                    train_accuracy: m.accuracy(loss_kind),
                    val_loss: v.map(|m| m.loss()),
                    val_accuracy: v.and_then(|m| m.accuracy(loss_kind)),
                    seconds,
                    samples_per_second: m.rows as f64 / seconds,
                };
                run.epochs.push(record.clone());
                records.push((k, record));
            }
            observer.epoch_end(&records);
            epoch_metrics = vec![Metrics::default(); models];
            epoch_started = Instant::now();
            if let (Some(patience), Some(loss)) = (
                config.early_stopping,
                records.first().and_then(|(_, r)| r.val_loss),
            ) {
                if best.as_ref().is_none_or(|(b, _)| loss < *b) {
                    best = Some((loss, engine.parameters(0)?));
                    stale = 0;
                } else {
                    stale += 1;
                }
                if stale >= patience {
                    stop = Stop::EarlyStopping;
                }
            }
        }
        let standing = |step| Standing {
            step,
            best: &best,
            stale,
            checksum: &checksum,
        };
        if checkpoint_point {
            let failed = tolerated(state::write(engine, config, &plan, standing(step)))?;
            if let Some(why) = &failed
                && state_failure.is_none()
            {
                observer.warning(&format!(
                    "{why}; training goes on, and the state is tried again at each checkpoint"
                ));
            }
            state_failure = failed;
        }
        if stop == Stop::EarlyStopping || runs.iter().all(|r| r.diverged.is_some()) {
            break;
        }
        if observer.interrupted() {
            stop = Stop::Interrupted;
            state_failure = tolerated(state::write(engine, config, &plan, standing(step)))?;
            break;
        }
    }
    let mut kept_val_loss = None;
    if stop == Stop::EarlyStopping
        && let Some((loss, params)) = &best
    {
        engine.set_parameters(0, params)?;
        kept_val_loss = Some(*loss);
    }
    Ok(TrainReport {
        models: runs,
        stop,
        steps: step,
        resident,
        kept_val_loss,
        state_failure,
    })
}

/// Refuses, before any work, a run whose mini-batches include one of a single row when the
/// model has a batch norm, which needs at least two rows' statistics in training.
fn check_batch_statistics(model: &crate::model::ModelSpec, plan: &RunPlan) -> Result<()> {
    // Only an epoch's last batch can be smaller than the others.
    let last = (plan.batches as usize).saturating_sub(1);
    let smallest = plan.order.batch_rows(last).min(plan.order.batch_rows(0));
    if model.has_running_statistics() && smallest < 2 {
        return Err(Error::Usage(format!(
            "a mini-batch of this run has {smallest} row, and a batch norm needs the statistics \
             of at least 2 rows in training (as PyTorch's BatchNorm1d); use --drop-last to drop \
             the last partial batch, or another --batch-size"
        )));
    }
    Ok(())
}
