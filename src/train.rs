//! The training loop: epochs of mini-batches from the scheduler through an [`Engine`], with the
//! hooks a run needs: validation, metrics, learning-rate schedule, early stopping, gradient
//! clipping, periodic training-state checkpoints, resume, and a clean stop when asked.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::checkpoint::{ModelCheckpoint, TrainingState, save_state};
use crate::data::mapped::MappedNpy;
use crate::data::scheduler::{Order, Source};
use crate::data::{Dataset, Standardizer};
use crate::engine::{Engine, Metrics};
use crate::error::{Error, Result};
use crate::loss::Batch;
use crate::optim::LrSchedule;

pub use crate::divergence::{DEFAULT_DIVERGENCE_THRESHOLD, REFERENCE_ROWS};
use crate::divergence::{loss_divergence, loss_limit, reference_rows};
pub(crate) use crate::feed::{Feed, Input, place};

/// Where the training rows live.
#[derive(Clone)]
pub enum TrainData {
    /// In memory: can be made resident on the device.
    Memory(Arc<Dataset>),
    /// Memory-mapped features: always streamed from disk.
    Mapped(Arc<MappedNpy>),
}

impl TrainData {
    /// Rows available.
    pub fn rows(&self) -> usize {
        match self {
            TrainData::Memory(d) => d.rows(),
            TrainData::Mapped(m) => m.rows(),
        }
    }

    pub(crate) fn source(&self) -> Arc<dyn Source> {
        match self {
            TrainData::Memory(d) => Arc::clone(d) as Arc<dyn Source>,
            TrainData::Mapped(m) => Arc::clone(m) as Arc<dyn Source>,
        }
    }
}

/// Whether batches are gathered on the device from a resident copy or streamed from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Residency {
    /// Resident when the data is in memory and fits the device; streamed otherwise.
    Auto,
    /// Resident, or an error.
    Resident,
    /// Always streamed.
    Streamed,
}

/// Where and how often to write training-state checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointPlan {
    /// The file (rewritten atomically each time).
    pub path: PathBuf,
    /// Steps between checkpoints (0: only when the run is interrupted).
    pub every_steps: u64,
    /// Feature statistics to record with the model.
    pub standardizer: Option<Standardizer>,
    /// Target statistics to record with the model (see [`ModelCheckpoint::target_standardizer`]).
    pub target_standardizer: Option<Standardizer>,
    /// The command-line flags to record in each state (see [`TrainingState::run_flags`]).
    pub run_flags: Option<Vec<String>>,
}

/// How to train.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Epochs to run.
    pub epochs: u64,
    /// Stop after this many steps in all, if sooner.
    pub max_steps: Option<u64>,
    /// Rows per batch.
    pub batch_size: usize,
    /// Reshuffle every epoch.
    pub shuffle: bool,
    /// Drop a last partial batch.
    pub drop_last: bool,
    /// Seed of the epoch order.
    pub seed: u64,
    /// Learning rate over the run (from the optimizer's rate).
    pub schedule: LrSchedule,
    /// Stop when the validation loss has not improved for this many epochs, and keep the best
    /// parameters seen.
    pub early_stopping: Option<u64>,
    /// Clip gradients to this global norm.
    pub clip_norm: Option<f32>,
    /// Read the training loss back every this many steps (and at each epoch's end).
    pub log_every: u64,
    /// Resident or streamed batches.
    pub residency: Residency,
    /// Training-state checkpoints.
    pub checkpoint: Option<CheckpointPlan>,
    /// Stop as diverged when a mean training loss read back exceeds this many times the larger of
    /// 1 and the loss before the first step of this run (measured on up to [`REFERENCE_ROWS`]
    /// training rows; after a resume, at the resumed parameters): a loss that grows by orders of
    /// magnitude without becoming infinite. `None` checks only for NaN and infinity.
    pub divergence_threshold: Option<f64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            max_steps: None,
            batch_size: 32,
            shuffle: true,
            drop_last: false,
            seed: 0,
            schedule: LrSchedule::default(),
            early_stopping: None,
            clip_norm: None,
            log_every: 50,
            residency: Residency::Auto,
            checkpoint: None,
            divergence_threshold: Some(DEFAULT_DIVERGENCE_THRESHOLD),
        }
    }
}

/// One epoch's results.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    /// Epoch number (from 1).
    pub epoch: u64,
    /// Steps taken in the whole run at its end.
    pub step: u64,
    /// Learning rate of its last step.
    pub lr: f64,
    /// Mean training loss over its steps (each measured before that step's update).
    pub train_loss: f64,
    /// Training accuracy, for classification losses.
    pub train_accuracy: Option<f64>,
    /// Validation loss after the epoch.
    pub val_loss: Option<f64>,
    /// Validation accuracy after the epoch.
    pub val_accuracy: Option<f64>,
    /// Wall time of the epoch, seconds.
    pub seconds: f64,
    /// Training rows per second.
    pub samples_per_second: f64,
}

/// A progress report, every `log_every` steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Steps taken in the whole run.
    pub step: u64,
    /// Steps the run will take at most.
    pub total_steps: u64,
    /// Current epoch (from 1).
    pub epoch: u64,
    /// Mean training loss since the previous report.
    pub loss: f64,
    /// Training rows per second since the run started.
    pub samples_per_second: f64,
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// All epochs (or the step budget) done.
    Completed,
    /// Early stopping; the best parameters were restored.
    EarlyStopping,
    /// The observer asked to stop (Ctrl-C, SIGTERM); a training state was written if a path was given.
    Interrupted,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// One record per finished epoch (a last partial one when a step budget ends mid-epoch).
    pub epochs: Vec<EpochRecord>,
    /// Why it ended.
    pub stop: Stop,
    /// Steps taken in all (including before a resume).
    pub steps: u64,
    /// Whether batches were gathered from data resident on the device.
    pub resident: bool,
    /// With early stopping, the validation loss of the parameters it restored (the best seen,
    /// possibly before a resume).
    pub kept_val_loss: Option<f64>,
    /// Why the last training-state checkpoint could not be written, if it could not (a periodic
    /// one is tried again at the next; the run goes on). When the run was interrupted, the state
    /// of that stop is then not written.
    pub state_failure: Option<String>,
}

/// Receives the run's progress; every method has a default that does nothing.
pub trait Observer {
    /// Before the first step: `None` when the data is resident on the device, else why it is
    /// streamed; and the step range.
    fn started(&mut self, _streamed_because: Option<&str>, _first_step: u64, _total_steps: u64) {}
    /// When resuming: the training state was saved with data whose fingerprint (see
    /// [`Source::checksum`]) was `then`, and the data now has `now`. The run goes on.
    fn data_changed(&mut self, _then: &str, _now: &str) {}
    /// Something the run goes on despite, in a sentence.
    fn warning(&mut self, _message: &str) {}
    /// Every `log_every` steps.
    fn progress(&mut self, _progress: &Progress) {}
    /// At every epoch's end.
    fn epoch_end(&mut self, _record: &EpochRecord) {}
    /// Polled after every step; `true` stops the run cleanly.
    fn interrupted(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
pub struct Silent;

impl Observer for Silent {}

/// Refuses a schedule that takes `optimizer`'s learning rate out of range within the run (an
/// exponential or step schedule with a factor above 1 grows it every epoch): checked at the last
/// step, where a growing rate is largest, before any step is taken.
pub(crate) fn check_schedule(
    optimizer: &crate::optim::Optimizer,
    config: &TrainConfig,
    per_epoch: u64,
    total: u64,
) -> Result<()> {
    let last = total.saturating_sub(1);
    let lr = config.schedule.lr(optimizer.lr(), last, per_epoch, total);
    crate::engine::check_learning_rate(optimizer, lr).map_err(|e| {
        Error::Usage(format!(
            "the learning-rate schedule reaches {} by step {} of {total}, which is not a valid \
             rate ({e}); choose a factor that keeps it in range",
            crate::error::readable(lr),
            last + 1
        ))
    })
}

/// A training state's write: a file that could not be written is told (the run goes on without
/// it); anything else, such as parameters that are no longer finite, ends the run.
fn tolerated(written: Result<()>) -> Result<Option<String>> {
    match written {
        Ok(()) => Ok(None),
        Err(e @ Error::Io { .. }) => Ok(Some(e.to_string())),
        Err(e) => Err(e),
    }
}

/// Refuses a run length that trains nothing: 0 epochs or 0 steps.
pub fn check_length(epochs: Option<u64>, max_steps: Option<u64>) -> Result<()> {
    if epochs == Some(0) || max_steps == Some(0) {
        return Err(Error::Usage(
            "--epochs 0 or --max-steps 0 trains nothing; give at least 1".into(),
        ));
    }
    Ok(())
}

/// The epoch order of `config` over `data`, the batches per epoch and the steps of the run.
pub(crate) fn run_length(data: &TrainData, config: &TrainConfig) -> Result<(Order, u64, u64)> {
    check_length(Some(config.epochs), config.max_steps)?;
    let order = Order::new(
        data.rows(),
        config.batch_size,
        config.shuffle,
        config.drop_last,
        config.seed,
    )?;
    let per_epoch = order.batches_per_epoch() as u64;
    let total = (config.epochs * per_epoch).min(config.max_steps.unwrap_or(u64::MAX));
    Ok((order, per_epoch, total))
}

/// Refuses training or validation data that does not fit `setup`'s model and loss, naming it.
pub(crate) fn check_data(
    setup: &crate::engine::Setup,
    data: &TrainData,
    val: Option<&Dataset>,
) -> Result<()> {
    let in_memory = match data {
        TrainData::Memory(d) => Some(d.as_ref()),
        TrainData::Mapped(_) => None,
    };
    for d in in_memory.into_iter().chain(val) {
        Batch::new(d.features.view(), d.targets.view())
            .check(&setup.model, setup.loss)
            .map_err(|e| Error::Data {
                source_name: d.name.clone(),
                message: e.to_string(),
            })?;
    }
    Ok(())
}

/// Trains `engine` on `data` (validating on `val` after each epoch), from the start or from
/// `resume`.
pub fn train(
    engine: &mut dyn Engine,
    data: &TrainData,
    val: Option<&Dataset>,
    config: &TrainConfig,
    resume: Option<&TrainingState>,
    observer: &mut dyn Observer,
) -> Result<TrainReport> {
    // Refuse data that does not fit the model before any work (so that falling back from resident
    // to streamed data below can only be about the device's capacity).
    check_data(engine.setup(), data, val)?;
    let (order, per_epoch, total) = run_length(data, config)?;
    let base_lr = engine.setup().optimizer.lr();
    check_schedule(&engine.setup().optimizer, config, per_epoch, total)?;
    engine.set_clip_norm(config.clip_norm)?;

    let mut best: Option<(f64, crate::model::Parameters)> = None;
    let mut stale = 0u64;
    let mut first = 0u64;
    if let Some(state) = resume {
        let (epoch, batch) = state.position;
        first = epoch * per_epoch + batch as u64;
        if state.state.steps != first || batch as u64 > per_epoch {
            return Err(Error::Usage(format!(
                "the training state is at step {} (epoch {epoch}, batch {batch}), which does not \
                 fit {per_epoch} batches per epoch: resume with the same data, batch size and --drop-last",
                state.state.steps
            )));
        }
        if first == total {
            observer.warning(&format!(
                "the training state is at step {first}, where this run ends: nothing is left to \
                 train, so the model is as the state holds it"
            ));
        }
        if first > total {
            return Err(Error::Usage(format!(
                "the training state is at step {first} (epoch {epoch}), and this run ends at step \
                 {total} (--epochs {}{}): nothing is left to train; give more --epochs",
                config.epochs,
                config
                    .max_steps
                    .map_or(String::new(), |m| format!(", --max-steps {m}"))
            )));
        }
        if state.seed != config.seed {
            observer.warning(&format!(
                "the training state was saved by a run with --seed {}, and this one has --seed {}: \
                 the batches from here on (and a --val-split) differ from the run it continues",
                state.seed, config.seed
            ));
        }
        let optimizer = engine.setup().optimizer.name();
        if state.optimizer != optimizer {
            return Err(Error::Usage(format!(
                "the training state was saved by {}, but this run uses {optimizer}: resume with the \
                 optimizer it was trained with",
                state.optimizer
            )));
        }
        engine.set_parameters(&state.checkpoint.parameters)?;
        engine.set_optimizer_state(&state.state)?;
        stale = state.epochs_without_improvement;
        best = state.best_val_loss.zip(state.best_parameters.clone());
    }

    let streamed_because = place(config.residency, data, |d| engine.load_resident(d))?;
    let resident = streamed_because.is_none();
    let mut feed = Feed::new(data, order, resident, first, total);
    let checksum = data.source().checksum()?;
    if let Some(state) = resume
        && state.data_checksum != checksum
    {
        observer.data_changed(&state.data_checksum, &checksum);
    }
    let limit = match config.divergence_threshold {
        Some(_) => {
            let (features, targets) = reference_rows(data)?;
            let start = engine.evaluate(&Batch::new(features.view(), targets.view()))?;
            loss_limit(config.divergence_threshold, start.loss())
        }
        None => None,
    };
    observer.started(streamed_because.as_deref(), first, total);

    let write_state = |engine: &mut dyn Engine,
                       step: u64,
                       best: &Option<(f64, crate::model::Parameters)>,
                       stale: u64|
     -> Result<()> {
        let Some(plan) = &config.checkpoint else {
            return Ok(());
        };
        // Never overwrite a good checkpoint with a diverged model.
        let parameters = engine.parameters()?;
        if parameters
            .named_tensors()
            .iter()
            .any(|t| t.values.iter().any(|v| !v.is_finite()))
        {
            let lr = engine.learning_rate();
            return Err(Error::Diverged {
                step,
                what: "the parameters are no longer finite".into(),
                lr,
                // A tenth of the rate the run was given (--lr), whatever the schedule made of it.
                suggested: base_lr / 10.0,
            });
        }
        let setup = engine.setup().clone();
        let state = TrainingState {
            checkpoint: ModelCheckpoint {
                model: setup.model,
                loss: setup.loss,
                parameters,
                standardizer: plan.standardizer.clone(),
                target_standardizer: plan.target_standardizer.clone(),
            },
            optimizer: setup.optimizer.name().to_string(),
            state: engine.optimizer_state()?,
            position: (step / per_epoch, (step % per_epoch) as usize),
            seed: config.seed,
            best_val_loss: best.as_ref().map(|(l, _)| *l),
            best_parameters: best.as_ref().map(|(_, p)| p.clone()),
            epochs_without_improvement: stale,
            data_checksum: checksum.clone(),
            run_flags: plan.run_flags.clone(),
        };
        save_state(&plan.path, &state)
    };

    let started = Instant::now();
    let mut epoch_started = Instant::now();
    let mut epoch_metrics = Metrics::default();
    let mut records = Vec::new();
    let mut stop = Stop::Completed;
    let mut step = first;
    let loss_kind = engine.setup().loss;
    let collect = |engine: &mut dyn Engine, step: u64, into: &mut [&mut Metrics]| -> Result<()> {
        let m = engine.take_metrics()?;
        if let Some(what) = loss_divergence(&m, limit, config.divergence_threshold) {
            let lr = engine.learning_rate();
            return Err(Error::Diverged {
                step,
                what,
                lr,
                // A tenth of the rate the run was given (--lr), whatever the schedule made of it.
                suggested: base_lr / 10.0,
            });
        }
        for target in into.iter_mut() {
            target.loss_sum += m.loss_sum;
            target.rows += m.rows;
            target.correct += m.correct;
        }
        Ok(())
    };
    let mut state_failure = None;
    while step < total {
        let epoch = step / per_epoch;
        engine.set_learning_rate(config.schedule.lr(base_lr, step, per_epoch, total))?;
        feed.step(step, |input| input.step(engine))?;
        step += 1;
        let epoch_done = step.is_multiple_of(per_epoch) || step == total;
        if step.is_multiple_of(config.log_every.max(1)) && !epoch_done {
            let mut since = Metrics::default();
            collect(engine, step, &mut [&mut epoch_metrics, &mut since])?;
            observer.progress(&Progress {
                step,
                total_steps: total,
                epoch: epoch + 1,
                loss: since.loss(),
                samples_per_second: (step - first) as f64 * config.batch_size as f64
                    / started.elapsed().as_secs_f64(),
            });
        }
        if epoch_done {
            collect(engine, step, &mut [&mut epoch_metrics])?;
            let seconds = epoch_started.elapsed().as_secs_f64();
            let validation = match val {
                Some(v) => Some(engine.evaluate(&Batch::new(v.features.view(), v.targets.view()))?),
                None => None,
            };
            let record = EpochRecord {
                epoch: epoch + 1,
                step,
                lr: engine.learning_rate(),
                train_loss: epoch_metrics.loss(),
                train_accuracy: epoch_metrics.accuracy(loss_kind),
                val_loss: validation.map(|m| m.loss()),
                val_accuracy: validation.and_then(|m| m.accuracy(loss_kind)),
                seconds,
                samples_per_second: epoch_metrics.rows as f64 / seconds,
            };
            observer.epoch_end(&record);
            let val_loss = record.val_loss;
            records.push(record);
            epoch_metrics = Metrics::default();
            epoch_started = Instant::now();
            if let (Some(patience), Some(loss)) = (config.early_stopping, val_loss) {
                if best.as_ref().is_none_or(|(b, _)| loss < *b) {
                    best = Some((loss, engine.parameters()?));
                    stale = 0;
                } else {
                    stale += 1;
                }
                if stale >= patience {
                    stop = Stop::EarlyStopping;
                }
            }
        }
        if let Some(plan) = &config.checkpoint
            && plan.every_steps > 0
            && step.is_multiple_of(plan.every_steps)
        {
            if !epoch_done {
                collect(engine, step, &mut [&mut epoch_metrics])?;
            }
            let failed = tolerated(write_state(engine, step, &best, stale))?;
            if let Some(why) = &failed
                && state_failure.is_none()
            {
                observer.warning(&format!(
                    "{why}; training goes on, and the state is tried again at each checkpoint"
                ));
            }
            state_failure = failed;
        }
        if stop == Stop::EarlyStopping {
            break;
        }
        if observer.interrupted() {
            stop = Stop::Interrupted;
            state_failure = tolerated(write_state(engine, step, &best, stale))?;
            break;
        }
    }
    let mut kept_val_loss = None;
    if stop == Stop::EarlyStopping
        && let Some((loss, params)) = &best
    {
        engine.set_parameters(params)?;
        kept_val_loss = Some(*loss);
    }
    Ok(TrainReport {
        epochs: records,
        stop,
        steps: step,
        resident,
        kept_val_loss,
        state_failure,
    })
}
