//! Training: one loop for a single run and a sweep, over an [`Engine`] of K ≥ 1 models.
//!
//! Epochs of mini-batches come from the scheduler ([`feed`]); groups of `accumulate` of them
//! make one optimizer step ([`crate::accumulate`]). Around the steps: validation, metrics, the
//! learning-rate schedule, gradient clipping, divergence (a model whose loss or update stops
//! being finite, or whose loss grows past the threshold, is frozen; the others go on), and for
//! a single model early stopping, periodic training-state checkpoints and resume ([`state`]).
//! Everything is told to one [`Observer`].

mod divergence;
mod feed;
mod length;
mod run;
mod state;
pub mod sweep;

use std::path::PathBuf;
use std::sync::Arc;

use crate::data::mapped::MappedNpy;
use crate::data::scheduler::Source;
use crate::data::{Dataset, Standardizer};
use crate::optim::LrSchedule;

pub use divergence::{DEFAULT_DIVERGENCE_THRESHOLD, REFERENCE_ROWS};
pub(crate) use feed::{Feed, place};
pub(crate) use length::check_data;
pub use length::check_length;
pub use run::train;

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
    /// Rows per mini-batch.
    pub batch_size: usize,
    /// Mini-batches per optimizer step (at least 1; see [`crate::accumulate`]). An epoch's last
    /// group may have fewer. Steps, and everything counted in steps (the schedule,
    /// `max_steps`, `log_every`, checkpoints), are optimizer steps.
    pub accumulate: u64,
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
            accumulate: 1,
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

/// A progress report: every `log_every` steps, and at every epoch's end.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Steps taken in the whole run.
    pub step: u64,
    /// Steps the run will take at most.
    pub total_steps: u64,
    /// Current epoch (from 1).
    pub epoch: u64,
    /// Each model's mean training loss since the previous report (NaN for a frozen model).
    pub losses: Vec<f64>,
    /// Training rows per second since the run started (for all models together).
    pub samples_per_second: f64,
    /// Whether the report falls at an epoch's end (where [`Observer::epoch_end`] follows).
    pub epoch_end: bool,
}

impl Progress {
    /// Model 0's mean training loss since the previous report.
    pub fn loss(&self) -> f64 {
        self.losses[0]
    }
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

/// When and how a model diverged.
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    /// The step at whose read-back it was seen.
    pub step: u64,
    /// What was not finite, or grew past the threshold.
    pub what: String,
}

/// One model's run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelRun {
    /// One record per epoch it finished before diverging (a last partial one when a step budget
    /// ends mid-epoch).
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

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// Each model's run, in the engine's order.
    pub models: Vec<ModelRun>,
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

impl TrainReport {
    /// Model 0's epochs: a single run's.
    pub fn epochs(&self) -> &[EpochRecord] {
        &self.models[0].epochs
    }
}

/// Receives the run's progress, for every model of the engine; every method has a default that
/// does nothing.
pub trait Observer {
    /// Before the first step: `None` when the data is resident on the device, else why it is
    /// streamed; and the step range.
    fn started(&mut self, _streamed_because: Option<&str>, _first_step: u64, _total_steps: u64) {}
    /// When resuming: the training state was saved with data whose fingerprint (see
    /// [`Source::checksum`]) was `then`, and the data now has `now`. The run goes on.
    fn data_changed(&mut self, _then: &str, _now: &str) {}
    /// Something the run goes on despite, in a sentence.
    fn warning(&mut self, _message: &str) {}
    /// Every `log_every` steps, and at every epoch's end.
    fn progress(&mut self, _progress: &Progress) {}
    /// When model `k` is found diverged and frozen (a single model's run then ends with
    /// [`crate::Error::Diverged`]).
    fn diverged(&mut self, _k: usize, _divergence: &Divergence) {}
    /// At every epoch's end, with the record of each model still training.
    fn epoch_end(&mut self, _records: &[(usize, EpochRecord)]) {}
    /// Polled after every step; `true` stops the run cleanly.
    fn interrupted(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
pub struct Silent;

impl Observer for Silent {}
