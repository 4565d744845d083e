//! The command line's flags: the commands, and the flag groups they share. Each command takes
//! exactly the groups it uses, so no command accepts a flag that it ignores.

mod choices;
mod commands;
mod groups;
mod optimizer;

use clap::{Parser, Subcommand};

pub use choices::*;
pub use commands::*;
pub use groups::*;
pub use optimizer::OptimizerArgs;

/// Train linear models and MLPs by mini-batch gradient descent on any GPU wgpu reaches.
#[derive(Parser)]
#[command(name = "downhill", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand)]
pub enum Command {
    /// Train a model; with no data flags, a default MLP on the built-in digits data.
    Train(Box<TrainArgs>),
    /// Loss and the scores of a saved model on data: R², MAE and RMSE for regression; accuracy,
    /// per-class precision, recall and F1 and the confusion matrix for classification.
    Eval(EvalArgs),
    /// Write a saved model's outputs, classes or probabilities for data, as .npy or .csv.
    Predict(PredictArgs),
    /// Run the same model, data and batches through the GPU engine and the CPU reference and
    /// compare loss, gradients and parameters at every step; exit 1 when they disagree.
    Check(Box<CheckArgs>),
    /// Train several models side by side on the same batches: every combination of the --lr,
    /// --momentum and --weight-decay lists, --restarts initialisations each; report each one,
    /// plot their losses and save the best.
    Sweep(Box<SweepArgs>),
    /// Benchmark the matrix product, training at several batch sizes, or sweeps.
    Bench(BenchArgs),
    /// The learning-rate range test: one pass over mini-batches with the learning rate growing
    /// exponentially, the loss recorded at each step, and the rate where it falls fastest
    /// suggested.
    LrFind(Box<LrFindArgs>),
    /// List every GPU adapter wgpu finds, with the limits that matter for training.
    Devices,
    /// Time afresh the matrix products a model trains with on this GPU, at a batch size and a
    /// number of models side by side: every candidate tile of each product's shape, the fastest
    /// kept in the tuning cache in place of the cached choice, and the table shown.
    Tune(Box<TuneArgs>),
}
