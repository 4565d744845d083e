//! Each command's flags: its own, then the groups it shares with others.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[cfg(feature = "mpi")]
use super::choices::OverlapChoice;
use super::choices::{CheckFormat, TableFormat};
use super::groups::*;
use super::optimizer::OptimizerArgs;

/// Flags of `downhill train`.
#[derive(Args, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Under mpirun: every this many steps, compare a checksum of the parameters across the
    /// ranks and stop with an error when the replicas differ (a check of the data-parallel
    /// run, off by default).
    #[cfg(feature = "mpi")]
    #[arg(long, value_name = "STEPS")]
    pub check_replicas: Option<u64>,
    /// Under mpirun: sum the gradients over the ranks in buckets of whole layers of at most
    /// this many MiB (a larger layer is a bucket of its own; the first bucket at most 1 MiB),
    /// each started as soon as backward has produced it, as PyTorch DDP's bucket_cap_mb.
    /// Smaller buckets start sooner; larger ones send fewer messages.
    #[cfg(feature = "mpi")]
    #[arg(long, value_name = "MIB", default_value_t = 25.0)]
    pub bucket_mib: f64,
    /// Under mpirun: sum each bucket over the ranks on a thread of its own while backward goes
    /// on (on), or as backward hands it over (off); auto overlaps on a hardware GPU and not on
    /// the CPU engine or a software adapter, whose backward needs the cores the sum would take.
    #[cfg(feature = "mpi")]
    #[arg(long, value_enum, default_value = "auto")]
    pub overlap: OverlapChoice,
    /// Stop when the validation loss has not improved for this many epochs (keeping the best model).
    #[arg(long, value_name = "PATIENCE")]
    pub early_stopping: Option<u64>,
    #[command(flatten)]
    pub checkpoints: CheckpointArgs,
    #[command(flatten)]
    pub outputs: OutputArgs,
}

/// Flags of `downhill sweep`: its own, then the model, data and optimizer (hyperparameter lists
/// and --restarts set the models; --save receives the best model; --plot draws every model's
/// loss).
#[derive(Args)]
pub struct SweepArgs {
    /// Output format of the per-model results: a table, or JSON with every epoch.
    #[arg(long, value_enum, default_value = "table")]
    pub format: CheckFormat,
    /// Sweep and check: train this many initialisations of each setting (seeds --seed,
    /// --seed + 1, ...), side by side.
    #[arg(long, default_value_t = 1)]
    pub restarts: u64,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub outputs: OutputArgs,
}

/// Flags of `downhill check`: its own, then the model, data, optimizer and batches (always on
/// the GPU against the CPU reference; lists and --restarts check a packed run).
#[derive(Args)]
pub struct CheckArgs {
    /// Steps to compare.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Relative tolerance: |gpu - cpu| <= abs + rel * |cpu|.
    #[arg(long, default_value_t = 1e-4)]
    pub rel: f32,
    /// Absolute tolerance.
    #[arg(long, default_value_t = 1e-5)]
    pub abs: f32,
    /// Output format: a table per step, or JSON.
    #[arg(long, value_enum, default_value = "table")]
    pub format: CheckFormat,
    /// Plant a fault to see it caught: add DELTA to entry INDEX of the GPU's TENSOR before the
    /// first step, as TENSOR:INDEX:DELTA (e.g. layers.1.weight:3:0.01).
    #[arg(long, value_name = "TENSOR:INDEX:DELTA")]
    pub perturb: Option<String>,
    /// Sweep and check: train this many initialisations of each setting (seeds --seed,
    /// --seed + 1, ...), side by side.
    #[arg(long, default_value_t = 1)]
    pub restarts: u64,
    /// Clip gradients to this global L2 norm.
    #[arg(long, allow_negative_numbers = true)]
    pub clip_norm: Option<f32>,
    /// Mini-batches per optimizer step (gradients accumulated over their rows); --steps counts
    /// optimizer steps.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = super::choices::mini_batches_per_step)]
    pub accumulate: u64,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub gpu: GpuArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub init: InitArgs,
    #[command(flatten)]
    pub optimizer: OptimizerArgs,
    #[command(flatten)]
    pub lr: LearningRateArgs,
    #[command(flatten)]
    pub batches: BatchArgs,
}

/// Flags of `downhill lr-find`: its own, then the model, data, optimizer and batches.
#[derive(Args)]
pub struct LrFindArgs {
    /// Steps of the test, one learning rate each (wrapping epochs when the data has fewer batches).
    #[arg(long, default_value_t = 200)]
    pub steps: u64,
    /// The learning rate of the first step.
    #[arg(long, default_value_t = 1e-7, allow_negative_numbers = true)]
    pub start_lr: f64,
    /// The learning rate of the last step.
    #[arg(long, default_value_t = 10.0, allow_negative_numbers = true)]
    pub end_lr: f64,
    /// Write the curve (step, lr, loss, smoothed_loss) to this .json or .csv file.
    #[arg(long, value_name = "FILE.json|FILE.csv")]
    pub output: Option<PathBuf>,
    /// Clip gradients to this global L2 norm.
    #[arg(long, allow_negative_numbers = true)]
    pub clip_norm: Option<f32>,
    /// Draw the loss against the learning rate (log axis), the suggestion marked, to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Print only the final result.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub mmap: MmapArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub init: InitArgs,
    #[command(flatten)]
    pub optimizer: OptimizerArgs,
    #[command(flatten)]
    pub batches: BatchArgs,
    #[command(flatten)]
    pub residency: ResidencyArgs,
}

/// `downhill bench`.
#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchCommand,
}

/// What `downhill bench` measures.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// GFLOP/s of the engine's matrix product beside ndarray's, measured in the same run.
    Gemm(GemmArgs),
    /// Throughput, step time, GPU time, memory and convergence at each batch size.
    BatchSize(Box<BatchSizeArgs>),
    /// Wall time of a sweep of K models side by side against one model, for the same run.
    Sweep(Box<PackBenchArgs>),
}

/// Flags of `downhill bench sweep`: its own, then the model, data, optimizer and run.
#[derive(Args)]
pub struct PackBenchArgs {
    /// Numbers of models trained side by side (restarts of one setting), each timed against one.
    #[arg(long, value_delimiter = ',', default_value = "4,16")]
    pub models: Vec<usize>,
    /// Times each run is repeated (interleaved); the fastest counts.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Output format: a table, JSON or CSV, on standard output.
    #[arg(long, value_enum, default_value = "table")]
    pub format: TableFormat,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub optimizer: OptimizerArgs,
    #[command(flatten)]
    pub lr: LearningRateArgs,
    #[command(flatten)]
    pub batches: BatchArgs,
    #[command(flatten)]
    pub residency: ResidencyArgs,
    #[command(flatten)]
    pub length: LengthArgs,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    #[command(flatten)]
    pub monitor: MonitorArgs,
}

/// Which engines a benchmark measures, side by side.
#[derive(Args, Clone)]
pub struct BenchDevices {
    /// The engines to measure, e.g. gpu,cpu (auto: a hardware GPU when there is one, else the
    /// CPU engine).
    #[arg(
        long = "device",
        value_enum,
        value_delimiter = ',',
        default_value = "auto"
    )]
    pub devices: Vec<super::choices::DeviceChoice>,
    #[command(flatten)]
    pub gpu: GpuArgs,
}

/// Flags of `downhill bench gemm`.
#[derive(Args)]
pub struct GemmArgs {
    /// Square sizes n of the n×n·n×n products.
    #[arg(long, value_delimiter = ',', default_value = "256,512,1024")]
    pub sizes: Vec<usize>,
    /// Seconds to spend timing each size and implementation (about).
    #[arg(long, default_value_t = 1.0)]
    pub seconds: f64,
    /// Output format: a table, JSON or CSV, on standard output.
    #[arg(long, value_enum, default_value = "table")]
    pub format: TableFormat,
    #[command(flatten)]
    pub devices: BenchDevices,
}

/// Flags of `downhill bench batch-size`: its own, then the model, data and optimizer.
#[derive(Args)]
pub struct BatchSizeArgs {
    /// The batch sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "16,64,256,1024")]
    pub batch_sizes: Vec<usize>,
    /// Steps run before timing.
    #[arg(long, default_value_t = 5)]
    pub warmup_steps: usize,
    /// Steps timed.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Report the wall time until the training loss first reaches this value.
    #[arg(long)]
    pub target_loss: Option<f64>,
    /// Output format: a table, JSON or CSV, on standard output.
    #[arg(long, value_enum, default_value = "table")]
    pub format: TableFormat,
    /// Epochs trained at each batch size for the loss-against-time curves.
    #[arg(long, default_value_t = 10)]
    pub epochs: u64,
    /// Seed of initialisation, shuffling and synthetic data.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Draw throughput against batch size and loss against wall time to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub mmap: MmapArgs,
    #[command(flatten)]
    pub residency: ResidencyArgs,
    #[command(flatten)]
    pub devices: BenchDevices,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub init: InitArgs,
    #[command(flatten)]
    pub optimizer: OptimizerArgs,
    #[command(flatten)]
    pub lr: LearningRateArgs,
}

/// Flags of `downhill eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// The saved model.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Output format: a table (loss, scores, per-class figures, confusion matrix) or JSON.
    #[arg(long, value_enum, default_value = "table")]
    pub format: CheckFormat,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Flags of `downhill predict`.
#[derive(Args)]
pub struct PredictArgs {
    /// The saved model.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Features (.npy or IDX).
    #[arg(long, value_name = "FILE")]
    pub features: Option<PathBuf>,
    /// A CSV file of features (columns named by --target-column are left out).
    #[arg(long, value_name = "FILE.csv")]
    pub data: Option<PathBuf>,
    /// CSV columns that are not features.
    #[arg(
        long,
        value_name = "NAME|INDEX",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub target_column: Vec<String>,
    /// Where to write predictions: .npy or .csv.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Write each row's predicted class instead of the outputs: the largest output for
    /// cross-entropy; for bce-logits, 1 where a logit is above 0 (one column of 0/1 labels per
    /// output when there are several).
    #[arg(long)]
    pub classes: bool,
    /// Write probabilities instead of the outputs: the softmax over the outputs for
    /// cross-entropy, each output's sigmoid for bce-logits (not for mse).
    #[arg(long)]
    pub proba: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Flags of `downhill tune`: its own, then the data and model whose products are timed.
#[derive(Args)]
pub struct TuneArgs {
    /// Rows per mini-batch: the products are timed at this many rows.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Models trained side by side (as `sweep` packs them), whose products are timed together.
    #[arg(long, default_value_t = 1)]
    pub models: usize,
    /// Output format: a table, JSON or CSV, on standard output.
    #[arg(long, value_enum, default_value = "table")]
    pub format: TableFormat,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub gpu: GpuArgs,
}
