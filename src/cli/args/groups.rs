//! The flag groups that commands share: each group is the flags of one concern, and means the
//! same wherever it appears.

use std::path::PathBuf;

use clap::Args;

use super::choices::{BackendChoice, DeviceChoice, NormChoice, ResidencyChoice, TaskChoice};
use super::optimizer::OptimizerArgs;

/// Where data comes from (one of: --features with --targets, --data, --dataset).
#[derive(Args, Clone, Default)]
pub struct DataArgs {
    /// Features: .npy ([rows, inputs] or 1-D) or IDX (MNIST format, gzip or not).
    #[arg(long, value_name = "FILE")]
    pub features: Option<PathBuf>,
    /// Targets: .npy or IDX; integer values are class indices, floats are target values.
    #[arg(long, value_name = "FILE")]
    pub targets: Option<PathBuf>,
    /// A CSV file holding features and targets (see --target-column).
    #[arg(long, value_name = "FILE.csv")]
    pub data: Option<PathBuf>,
    /// CSV target column(s), by header name or 0-based index (negative from the end); default: the last.
    #[arg(
        long,
        value_name = "NAME|INDEX",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub target_column: Vec<String>,
    /// The CSV file has no header row (default: detected).
    #[arg(long)]
    pub no_header: bool,
    /// Skip rows with NaN or infinite values (in the features or the targets; CSV, .npy or IDX)
    /// instead of refusing the file. Memory-mapped features cannot skip rows.
    #[arg(long)]
    pub drop_nonfinite: bool,
    /// A built-in dataset: digits, linear, blobs or spirals.
    #[arg(long, value_name = "NAME")]
    pub dataset: Option<String>,
}

/// Whether training features stream from disk, for the commands that can stream them.
#[derive(Args, Clone)]
pub struct MmapArgs {
    /// Memory-map the --features .npy and stream batches from disk (automatic when the file is
    /// larger than half the available memory).
    #[arg(long)]
    pub mmap: bool,
}

/// Which engine runs.
#[derive(Args, Clone)]
pub struct DeviceArgs {
    /// Where to run: auto (a hardware GPU when there is one, else the CPU engine), gpu or cpu.
    #[arg(long, value_enum, default_value = "auto")]
    pub device: DeviceChoice,
    #[command(flatten)]
    pub gpu: GpuArgs,
}

/// Which GPU adapter, and how its products are tuned.
#[derive(Args, Clone)]
pub struct GpuArgs {
    /// Choose the GPU adapter by its index in `downhill devices` or a piece of its name.
    #[arg(long, value_name = "INDEX|NAME")]
    pub adapter: Option<String>,
    /// Choose the GPU adapter on this backend.
    #[arg(long, value_enum)]
    pub backend: Option<BackendChoice>,
    /// Use the fixed default matmul tiles instead of the fastest on this adapter. Without it,
    /// each new product shape is timed once and the choice cached per adapter and driver in
    /// $DOWNHILL_CACHE_DIR, $XDG_CACHE_HOME/downhill or ~/.cache/downhill (autotune.json).
    #[arg(long)]
    pub no_autotune: bool,
    /// Plan within this much device memory (MiB) instead of what the adapter reports: runs
    /// that would need more are refused before anything is allocated.
    #[arg(long, value_name = "MIB")]
    pub gpu_memory: Option<u64>,
}

/// Validation data: a seeded split of the training rows, or files.
#[derive(Args, Clone, Default)]
pub struct ValidationArgs {
    /// Hold out this fraction of the training rows (seeded by --seed) for validation.
    #[arg(long, value_name = "FRACTION", allow_negative_numbers = true)]
    pub val_split: Option<f64>,
    /// Validation features (.npy or IDX), with --val-targets.
    #[arg(long, value_name = "FILE")]
    pub val_features: Option<PathBuf>,
    /// Validation targets (.npy or IDX).
    #[arg(long, value_name = "FILE")]
    pub val_targets: Option<PathBuf>,
    /// Validation CSV, read like --data.
    #[arg(long, value_name = "FILE.csv")]
    pub val_data: Option<PathBuf>,
}

/// The model: its architecture, loss, task and feature scaling.
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// classification, regression, or auto: classification when the targets are one column of
    /// few small non-negative integers (the output width then follows the classes).
    #[arg(long, value_enum, default_value = "auto")]
    pub task: TaskChoice,
    /// Standardise regression targets (mean 0, std 1 per column, fitted on the training rows;
    /// saved with the model, and undone by predict and eval).
    #[arg(long)]
    pub standardize_targets: bool,
    /// Standardise features (mean 0, std 1, fitted on the training rows; saved with the model).
    #[arg(long)]
    pub standardize: bool,
    /// Layer widths from input to output, e.g. 64,32,10 (default: inputs,64,outputs).
    #[arg(long, value_delimiter = ',', value_name = "WIDTHS")]
    pub layers: Vec<usize>,
    /// Hidden layers' activation: identity, relu, leaky_relu, leaky_relu(SLOPE), sigmoid, tanh, gelu.
    #[arg(long, default_value = "relu")]
    pub activation: String,
    /// What follows each hidden layer's Linear, before its activation: none; layer (PyTorch's
    /// nn.LayerNorm over the layer's width, with a scale and a shift, saved as norms.{i}.weight
    /// and norms.{i}.bias); or batch (nn.BatchNorm1d: batch statistics in training, running
    /// statistics in evaluation, saved besides as norms.{i}.running_mean, running_var and
    /// num_batches_tracked).
    #[arg(long, value_enum, default_value = "none")]
    pub norm: NormChoice,
    /// The norm's ε, added to the variance before its square root (default 1e-5).
    #[arg(long, value_name = "EPS")]
    pub norm_eps: Option<f32>,
    /// How far a batch norm's running statistics move towards each training batch's
    /// (default 0.1, PyTorch's).
    #[arg(long, value_name = "M")]
    pub norm_momentum: Option<f32>,
    /// Inverted dropout after each hidden activation, in training only: each unit zeroed with
    /// probability P, the kept ones scaled by 1/(1 − P) (0: none).
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub dropout: f32,
    /// mse, cross-entropy or bce-logits (default: cross-entropy for class indices, else mse).
    #[arg(long)]
    pub loss: Option<String>,
}

/// Starting parameters, for the commands that train from them.
#[derive(Args, Clone)]
pub struct InitArgs {
    /// Start from these parameters (a downhill or PyTorch-layout safetensors file).
    #[arg(long, value_name = "FILE")]
    pub init: Option<PathBuf>,
}

/// The learning rate.
#[derive(Args, Clone)]
pub struct LearningRateArgs {
    /// The learning rate (sweep and check: a list, e.g. 1e-3,1e-2,1e-1).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub lr: Vec<f64>,
}

/// Mini-batches and their order.
#[derive(Args, Clone)]
pub struct BatchArgs {
    /// Rows per mini-batch.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Keep the file's row order instead of reshuffling every epoch.
    #[arg(long)]
    pub no_shuffle: bool,
    /// Drop each epoch's last partial batch.
    #[arg(long)]
    pub drop_last: bool,
    /// Seed of initialisation, shuffling, the validation split and synthetic data.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Where batches come from on the engine.
#[derive(Args, Clone)]
pub struct ResidencyArgs {
    /// Batches gathered on the GPU from a resident copy, or streamed from the host.
    #[arg(long, value_enum, default_value = "auto")]
    pub residency: ResidencyChoice,
}

/// How long a run trains.
#[derive(Args, Clone)]
pub struct LengthArgs {
    /// Epochs to train (default 10; 30 for the default run on the built-in digits).
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Stop after this many steps in all.
    #[arg(long)]
    pub max_steps: Option<u64>,
}

/// The learning rate's schedule and gradient clipping over a run.
#[derive(Args, Clone)]
pub struct ScheduleArgs {
    /// constant, step:EPOCHS:GAMMA, exponential:GAMMA, cosine or cosine:MIN_LR.
    #[arg(long, default_value = "constant")]
    pub schedule: String,
    /// Linear learning-rate warm-up over this many steps.
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,
    /// Clip gradients to this global L2 norm.
    #[arg(long, allow_negative_numbers = true)]
    pub clip_norm: Option<f32>,
}

/// What a run watches as it trains.
#[derive(Args, Clone)]
pub struct MonitorArgs {
    /// Read the training loss back every this many steps.
    #[arg(long, default_value_t = 50)]
    pub log_every: u64,
    /// Stop as diverged when a training loss read back exceeds this many times the larger of 1
    /// and the loss before training (0 turns it off; NaN and infinity always stop).
    #[arg(long, value_name = "FACTOR", default_value_t = downhill::train::DEFAULT_DIVERGENCE_THRESHOLD)]
    pub divergence_threshold: f64,
}

/// What a training run writes.
#[derive(Args, Clone)]
pub struct OutputArgs {
    /// Print only the final result.
    #[arg(long)]
    pub quiet: bool,
    /// Save the trained model here (safetensors).
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Write one JSON line of metrics per epoch to this file.
    #[arg(long, value_name = "FILE.jsonl")]
    pub metrics: Option<PathBuf>,
    /// Plot the loss curves to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Write TensorBoard event files to this folder (train: the folder is the run; sweep: one
    /// run folder per model); view with `tensorboard --logdir DIR`.
    #[arg(long, value_name = "DIR")]
    pub tensorboard: Option<PathBuf>,
}

/// Training-state checkpoints and resuming from them.
#[derive(Args, Clone)]
pub struct CheckpointArgs {
    /// Write a training-state checkpoint every this many steps.
    #[arg(long, value_name = "STEPS")]
    pub checkpoint_every: Option<u64>,
    /// The training-state file (default: next to --save, as NAME.state.safetensors).
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Resume from a training-state checkpoint.
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
}

/// A training run's flags, shared by `train` and `sweep`: its data and their memory-mapping,
/// device, validation, model, starting parameters, optimizer, learning rate, batches, residency,
/// length, schedule and monitoring.
#[derive(Args, Clone)]
pub struct RunArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub mmap: MmapArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
    #[command(flatten)]
    pub validation: ValidationArgs,
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
    /// Mini-batches per optimizer step, which steps with the gradient of the mean loss over all
    /// their rows (an epoch's last group may have fewer); steps count optimizer steps.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = super::choices::mini_batches_per_step)]
    pub accumulate: u64,
    #[command(flatten)]
    pub residency: ResidencyArgs,
    #[command(flatten)]
    pub length: LengthArgs,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    #[command(flatten)]
    pub monitor: MonitorArgs,
}
