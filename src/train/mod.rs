//! Training: one loop for a single run and a sweep, over an
//! [`Engine`](crate::engine::Engine) of K ≥ 1 models.
//!
//! Epochs of mini-batches come from the scheduler (`feed.rs`); groups of `accumulate` of them
//! make one optimizer step ([`crate::accumulate`]). Around the steps: validation, metrics, the
//! learning-rate schedule, gradient clipping, divergence (a model whose loss or update stops
//! being finite, or whose loss grows past the threshold, is frozen; the others go on), and for
//! a single model early stopping, periodic training-state checkpoints and resume (`state.rs`).
//! Everything is told to one [`Observer`].

mod config;
mod divergence;
mod feed;
mod length;
mod report;
mod run;
mod state;
pub mod sweep;

pub use config::{CheckpointPlan, DEFAULT_DIVERGENCE_THRESHOLD, Residency, TrainConfig, TrainData};
pub use divergence::REFERENCE_ROWS;
pub(crate) use feed::{Feed, place};
pub(crate) use length::check_data;
pub use length::check_length;
pub use report::{
    Divergence, EpochRecord, ModelRun, Observer, Progress, Silent, Start, Stop, TrainReport,
};
pub(crate) use run::run;
pub use run::train;
