//! Hyperparameter sweeps and random restarts: K models of one architecture, one per point of a
//! grid of learning rates, momenta, weight decays and seeds, trained in lock step on the same
//! batches through a [`Pack`]. A model whose loss or update stops being finite is marked
//! diverged and frozen while the others go on; at the end the best model is the one with the
//! lowest final validation loss (training loss without validation data) among those that did
//! not diverge.

use std::time::Instant;

use crate::data::Dataset;
use crate::divergence::{loss_divergence, loss_limit, reference_rows};
use crate::engine::Metrics;
use crate::error::{Error, Result};
use crate::loss::Batch;
use crate::model::{ModelSpec, Parameters};
use crate::optim::Optimizer;
use crate::pack::{Member, Pack};
use crate::train::{
    EpochRecord, Feed, Input, Stop, TrainConfig, TrainData, check_data, check_schedule, place,
    run_length,
};

/// Why restarts cannot start from one given set of parameters.
pub const RESTARTS_FROM_ONE_START: &str = "restarts draw different initial parameters, but a \
    starting checkpoint gives every model the same ones: drop --init or --restarts";

/// What sets one model of a sweep apart: its hyperparameters and its initialisation seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting {
    /// Learning rate.
    pub lr: f64,
    /// Momentum, when the sweep sets it.
    pub momentum: Option<f64>,
    /// Weight decay, when the sweep sets it.
    pub weight_decay: Option<f64>,
    /// Seed of the initial parameters.
    pub seed: u64,
}

impl Setting {
    /// A short name: the learning rate, what else the grid varies, and the seed when there are
    /// restarts (`lr=0.01 momentum=0.9 seed=1`).
    pub fn label(&self, grid: &Grid) -> String {
        let mut parts = vec![format!("lr={}", self.lr)];
        if let Some(m) = self.momentum {
            parts.push(format!("momentum={m}"));
        }
        if let Some(wd) = self.weight_decay {
            parts.push(format!("weight_decay={wd}"));
        }
        if grid.restarts > 1 {
            parts.push(format!("seed={}", self.seed));
        }
        parts.join(" ")
    }
}

/// The values to try. The models are the product `lr × momentum × weight_decay × restarts`, in
/// that order (restarts vary fastest); an empty list keeps the base optimizer's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Learning rates.
    pub lr: Vec<f64>,
    /// Momenta (SGD and RMSprop).
    pub momentum: Vec<f64>,
    /// Weight decays.
    pub weight_decay: Vec<f64>,
    /// Initialisations per setting: seeds `seed`, `seed + 1`, ..., `seed + restarts − 1`.
    pub restarts: u64,
    /// The first initialisation seed.
    pub seed: u64,
}

impl Grid {
    /// Every model's setting, with `base` supplying the learning rate when `lr` is empty.
    pub fn settings(&self, base: &Optimizer) -> Vec<Setting> {
        let or_base = |list: &[f64], base: Option<f64>| -> Vec<Option<f64>> {
            if list.is_empty() {
                vec![base]
            } else {
                list.iter().copied().map(Some).collect()
            }
        };
        let mut settings = Vec::new();
        for lr in or_base(&self.lr, Some(base.lr())) {
            for momentum in or_base(&self.momentum, None) {
                for weight_decay in or_base(&self.weight_decay, None) {
                    for restart in 0..self.restarts.max(1) {
                        settings.push(Setting {
                            lr: lr.unwrap_or(base.lr()),
                            momentum,
                            weight_decay,
                            seed: self.seed + restart,
                        });
                    }
                }
            }
        }
        settings
    }

    /// Every model as a pack member: `base` with the setting's hyperparameters, starting from
    /// `init` when given (then there can be no restarts: they would all be the same model) or
    /// from parameters drawn with the setting's seed.
    pub fn members(
        &self,
        base: &Optimizer,
        model: &ModelSpec,
        init: Option<&Parameters>,
    ) -> Result<Vec<(Setting, Member)>> {
        if init.is_some() && self.restarts > 1 {
            return Err(Error::Usage(RESTARTS_FROM_ONE_START.into()));
        }
        self.settings(base)
            .into_iter()
            .map(|s| {
                let mut optimizer = base.with_lr(s.lr);
                if let Some(m) = s.momentum {
                    optimizer = optimizer.with_momentum(m)?;
                }
                if let Some(wd) = s.weight_decay {
                    optimizer = optimizer.with_weight_decay(wd)?;
                }
                optimizer.validate()?;
                let parameters = match init {
                    Some(p) => p.clone(),
                    None => Parameters::init(model, s.seed),
                };
                Ok((
                    s,
                    Member {
                        optimizer,
                        parameters,
                    },
                ))
            })
            .collect()
    }
}

/// When and how a model diverged.
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    /// The step at whose read-back it was seen.
    pub step: u64,
    /// What was not finite.
    pub what: String,
}

/// One model's run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelRun {
    /// One record per epoch it finished before diverging.
    pub epochs: Vec<EpochRecord>,
    /// `(step, mean training loss since the previous point)` at every read-back, for plotting.
    pub curve: Vec<(u64, f64)>,
    /// Set when it diverged (and was frozen).
    pub diverged: Option<Divergence>,
}

impl ModelRun {
    /// The loss that ranks the model: its last validation loss, else its last training loss;
    /// `None` when it diverged or finished no epoch.
    pub fn score(&self) -> Option<f64> {
        if self.diverged.is_some() {
            return None;
        }
        let last = self.epochs.last()?;
        Some(last.val_loss.unwrap_or(last.train_loss)).filter(|l| l.is_finite())
    }
}

/// What a sweep did.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepReport {
    /// Each model's run, in pack order.
    pub models: Vec<ModelRun>,
    /// The model with the lowest score (see [`ModelRun::score`]; ties go to the first), if any
    /// did not diverge.
    pub best: Option<usize>,
    /// Why it ended ([`Stop::Completed`] also when every model diverged).
    pub stop: Stop,
    /// Steps taken.
    pub steps: u64,
    /// Whether batches were gathered from data resident on the device.
    pub resident: bool,
}

/// Receives a sweep's progress; every method has a default that does nothing.
pub trait SweepObserver {
    /// Before the first step: `None` when the data is resident on the device, else why it is
    /// streamed; and the steps to take.
    fn started(&mut self, _streamed_because: Option<&str>, _total_steps: u64) {}
    /// After every read-back of the training losses, with each model's mean loss since the
    /// previous one (NaN for frozen models).
    fn progress(&mut self, _step: u64, _total_steps: u64, _losses: &[f64]) {}
    /// When model `k` is found diverged and frozen.
    fn diverged(&mut self, _k: usize, _divergence: &Divergence) {}
    /// At every epoch's end, with the record of each model still training.
    fn epoch_end(&mut self, _records: &[(usize, EpochRecord)]) {}
    /// Polled after every step; `true` stops the sweep cleanly.
    fn interrupted(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
pub struct Quiet;

impl SweepObserver for Quiet {}

/// Trains every model of `pack` on `data` in lock step for the run `config` describes
/// (validating each on `val` after every epoch); the learning-rate schedule scales each
/// model's own rate. Early stopping and training-state checkpoints are for single runs and
/// are refused here.
pub fn sweep(
    pack: &mut dyn Pack,
    data: &TrainData,
    val: Option<&Dataset>,
    config: &TrainConfig,
    observer: &mut dyn SweepObserver,
) -> Result<SweepReport> {
    if config.early_stopping.is_some() {
        return Err(Error::Usage(
            "a sweep trains every model for the whole run; early stopping is for a single run \
             (train)"
                .into(),
        ));
    }
    if config.checkpoint.is_some() {
        return Err(Error::Usage(
            "a sweep writes no training-state checkpoints; resumable runs are for a single \
             model (train)"
                .into(),
        ));
    }
    let models = pack.models();
    let setups: Vec<_> = (0..models).map(|k| pack.setup(k)).collect();
    check_data(&setups[0], data, val)?;
    let (order, per_epoch, total) = run_length(data, config)?;
    for setup in &setups {
        check_schedule(&setup.optimizer, config, per_epoch, total)?;
    }
    let base_lrs: Vec<f64> = setups.iter().map(|s| s.optimizer.lr()).collect();
    let mut lrs = base_lrs.clone();
    pack.set_clip_norm(config.clip_norm)?;
    let streamed_because = place(config.residency, data, |d| pack.load_resident(d))?;
    let resident = streamed_because.is_none();
    let mut feed = Feed::new(data, order, resident, 0, total);
    let limits: Vec<Option<f64>> = match config.divergence_threshold {
        Some(_) => {
            let (features, targets) = reference_rows(data)?;
            pack.evaluate(&Batch::new(features.view(), targets.view()))?
                .iter()
                .map(|m| loss_limit(config.divergence_threshold, m.loss()))
                .collect()
        }
        None => vec![None; models],
    };
    observer.started(streamed_because.as_deref(), total);

    let mut runs = vec![ModelRun::default(); models];
    let mut epoch_metrics = vec![Metrics::default(); models];
    let mut epoch_started = Instant::now();
    let mut stop = Stop::Completed;
    let mut step = 0;
    let loss_kind = setups[0].loss;
    // Reads every model's metrics back, freezing the models that diverged.
    let collect = |pack: &mut dyn Pack,
                   step: u64,
                   runs: &mut [ModelRun],
                   epoch_metrics: &mut [Metrics],
                   observer: &mut dyn SweepObserver|
     -> Result<()> {
        let metrics = pack.take_metrics()?;
        let mut losses = Vec::with_capacity(models);
        for (k, m) in metrics.iter().enumerate() {
            if runs[k].diverged.is_some() {
                losses.push(f64::NAN);
                continue;
            }
            if let Some(what) = loss_divergence(m, limits[k], config.divergence_threshold) {
                let d = Divergence { step, what };
                observer.diverged(k, &d);
                runs[k].diverged = Some(d);
                pack.freeze(k)?;
                losses.push(f64::NAN);
                continue;
            }
            if m.rows > 0 {
                runs[k].curve.push((step, m.loss()));
            }
            losses.push(m.loss());
            let e = &mut epoch_metrics[k];
            e.loss_sum += m.loss_sum;
            e.rows += m.rows;
            e.correct += m.correct;
        }
        observer.progress(step, total, &losses);
        Ok(())
    };
    while step < total {
        let epoch = step / per_epoch;
        for (lr, &base) in lrs.iter_mut().zip(&base_lrs) {
            *lr = config.schedule.lr(base, step, per_epoch, total);
        }
        pack.set_learning_rates(&lrs)?;
        feed.step(step, |input| match input {
            Input::Gathered(indices) => pack.step_resident(indices),
            Input::Streamed(batch) => pack.step(batch),
        })?;
        step += 1;
        let epoch_done = step.is_multiple_of(per_epoch) || step == total;
        if epoch_done || step.is_multiple_of(config.log_every.max(1)) {
            collect(pack, step, &mut runs, &mut epoch_metrics, observer)?;
        }
        if epoch_done {
            let seconds = epoch_started.elapsed().as_secs_f64();
            let validation = match val {
                Some(v) => Some(pack.evaluate(&Batch::new(v.features.view(), v.targets.view()))?),
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
        }
        if runs.iter().all(|r| r.diverged.is_some()) {
            break;
        }
        if observer.interrupted() {
            stop = Stop::Interrupted;
            break;
        }
    }
    let best = runs
        .iter()
        .enumerate()
        .filter_map(|(k, r)| r.score().map(|s| (k, s)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k);
    Ok(SweepReport {
        models: runs,
        best,
        stop,
        steps: step,
        resident,
    })
}
