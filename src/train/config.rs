//! What a run is given: where its rows live, how batches reach the engine, and how to train.

use std::path::PathBuf;
use std::sync::Arc;

use crate::data::mapped::MappedNpy;
use crate::data::scheduler::{Share, Source};
use crate::data::{Dataset, Standardizer};
use crate::optim::LrSchedule;

/// The default [`TrainConfig::divergence_threshold`]: three orders of magnitude.
pub const DEFAULT_DIVERGENCE_THRESHOLD: f64 = 1000.0;

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

    /// The rows as the scheduler reads them.
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
    /// Whether this process writes the file: false on the ranks other than 0 of a
    /// data-parallel run, which keep the same plan (and so stop at the same steps to read
    /// their metrics) but leave the writing to rank 0, whose replica is theirs.
    pub writes: bool,
    /// Feature statistics to record with the model.
    pub standardizer: Option<Standardizer>,
    /// Target statistics to record with the model (see
    /// [`ModelCheckpoint::target_standardizer`](crate::checkpoint::ModelCheckpoint::target_standardizer)).
    pub target_standardizer: Option<Standardizer>,
    /// The command-line flags to record in each state (see
    /// [`TrainingState::run_flags`](crate::checkpoint::TrainingState::run_flags)).
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
    /// Seed of the epoch order and of dropout's masks.
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
    /// 1 and the loss before the first step of this run (measured on up to
    /// [`REFERENCE_ROWS`](crate::train::REFERENCE_ROWS)
    /// training rows; after a resume, at the resumed parameters): a loss that grows by orders of
    /// magnitude without becoming infinite. `None` checks only for NaN and infinity.
    pub divergence_threshold: Option<f64>,
    /// The part of each batch this process trains on: the whole batch, or, for a rank of a
    /// data-parallel run, its slice (its feed gathers or reads only those rows; see
    /// [`crate::distributed`]).
    pub share: Share,
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
            share: Share::WHOLE,
        }
    }
}
