//! What a run asks for: its data, validation, model, scaling, starting point and size, before
//! anything is loaded.

use std::path::PathBuf;

use crate::data::load::DataSpec;
use crate::data::task::Task;
use crate::loss::Loss;
use crate::model::{Activation, Norm};
use crate::optim::Optimizer;

/// Whether the training features are memory-mapped and streamed from disk instead of read whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryMap {
    /// Read whole, unless the features are an `.npy` file larger than half the memory available
    /// now: that one is memory-mapped (and a [`Note::MemoryMapped`](super::Note) says so).
    Auto,
    /// Always memory-mapped: the data must be a feature `.npy` file with a target file, and rows
    /// holding NaN or infinity cannot be skipped.
    Always,
    /// Always read whole, for runs that need every row in memory: a feature `.npy` file larger
    /// than half the memory available is refused.
    Never,
}

/// Where a run's validation rows come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Validation {
    /// No validation (except in the built-in default run, which holds out 20%).
    None,
    /// Hold out this fraction of the training rows, shuffled by the request's seed.
    Split(f64),
    /// Rows of their own, read as the training rows are (never memory-mapped).
    Data(DataSpec),
}

/// The model a run trains: its architecture, loss and targets' task, or a checkpoint to start
/// from.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRequest {
    /// What the targets are: classes, values, or decided from them ([`Task::Auto`]).
    pub task: Task,
    /// Layer widths from input to output; empty: `inputs, 64, outputs`, the outputs following
    /// the targets and the loss. A starting checkpoint's architecture must match it when given.
    pub layers: Vec<usize>,
    /// The hidden layers' activation (the output layer's is the identity).
    pub activation: Activation,
    /// What follows each hidden layer's `Linear`, before its activation. A starting
    /// checkpoint's norm must be of its kind unless it is [`Norm::None`] (the checkpoint's ε and
    /// momentum are kept).
    pub norm: Norm,
    /// The probability of dropout after each hidden activation, in `[0, 1]` (0: none). A
    /// starting checkpoint's must match it unless it is 0.
    pub dropout: f32,
    /// The loss; `None`: cross-entropy for class labels, mean squared error for values (or the
    /// starting checkpoint's).
    pub loss: Option<Loss>,
    /// Start from the parameters in this file (a downhill checkpoint, or PyTorch-layout
    /// safetensors), instead of an initialisation from the seed.
    pub init: Option<PathBuf>,
}

/// What a run asks for: everything [`prepare`](super::prepare) reads, with no command-line
/// types. Its messages name the command line's flags for each field (`--batch-size`, `--mmap`,
/// ...), as a person running `downhill` would give them.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    /// The training rows; `None`: the built-in default run, on the `digits` dataset with its
    /// features standardised, 20% of the rows held out for validation (unless validation is
    /// given) and 30 epochs (unless `epochs` says).
    pub data: Option<DataSpec>,
    /// The validation rows.
    pub validation: Validation,
    /// Whether the training features are memory-mapped.
    pub memory_map: MemoryMap,
    /// The model.
    pub model: ModelRequest,
    /// Standardise the features (mean 0, standard deviation 1 per column, fitted on the training
    /// rows); a starting checkpoint's statistics replace these.
    pub standardize: bool,
    /// Standardise regression targets the same way (mse only).
    pub standardize_targets: bool,
    /// A training state to resume from: its model, parameters and statistics are the run's.
    pub resume: Option<PathBuf>,
    /// The optimizer (the first of each hyperparameter list, for a run of several models).
    pub optimizer: Optimizer,
    /// How many models the run trains side by side (1 for a single run), for the memory check.
    pub models: u64,
    /// Whether the CPU engine may train them: its arrays then count against the host's memory.
    pub cpu_engine: bool,
    /// The largest batch the run takes (at least 1).
    pub batch_size: usize,
    /// Seed of the initialisation, the validation split and the built-in default data.
    pub seed: u64,
    /// Epochs to train; `None`: 10, or 30 for the default run.
    pub epochs: Option<u64>,
    /// Stop after this many steps in all.
    pub max_steps: Option<u64>,
}
