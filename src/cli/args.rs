//! The command line's flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Train linear models and MLPs by mini-batch gradient descent on any GPU wgpu reaches.
#[derive(Parser)]
#[command(name = "downhill", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Train a model; with no data flags, a default MLP on the built-in digits data.
    Train(Box<TrainArgs>),
    /// Loss and accuracy of a saved model on data.
    Eval(EvalArgs),
    /// Write a saved model's outputs for data, as .npy or .csv.
    Predict(PredictArgs),
    /// Run the same model, data and batches through the GPU engine and the CPU reference and
    /// compare loss, gradients and parameters at every step; exit 1 when they disagree.
    Check(Box<CheckArgs>),
    /// Train several models side by side on the same batches: every combination of the --lr,
    /// --momentum and --weight-decay lists, --restarts initialisations each; report each one,
    /// plot their losses and save the best.
    Sweep(Box<SweepArgs>),
    /// Benchmark the matrix product, or training at several batch sizes.
    Bench(BenchArgs),
    /// List every GPU adapter wgpu finds, with the limits that matter for training.
    Devices,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    Table,
    Json,
    Csv,
}

/// `downhill bench`.
#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchCommand,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// GFLOP/s of the engine's matrix product beside ndarray's, measured in the same run.
    Gemm(GemmArgs),
    /// Throughput, step time, GPU time, memory and convergence at each batch size.
    BatchSize(Box<BatchSizeArgs>),
    /// Wall time of a sweep of K models side by side against one model, for the same run.
    Sweep(Box<PackBenchArgs>),
}

/// Flags of `downhill bench sweep`: its own, then `train`'s for model, data, optimizer and the
/// run's length.
#[derive(Args)]
pub struct PackBenchArgs {
    /// Numbers of models trained side by side (restarts of one setting), each timed against one.
    #[arg(long, value_delimiter = ',', default_value = "4,16")]
    pub models: Vec<usize>,
    /// Times each run is repeated (interleaved); the fastest counts.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    #[arg(long, value_enum, default_value = "table")]
    pub format: TableFormat,
    #[command(flatten)]
    pub run: TrainArgs,
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
    #[arg(long, value_enum, default_value = "table")]
    pub format: TableFormat,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Flags of `downhill bench batch-size`: its own, then `train`'s for model, data and optimizer.
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
    #[arg(long, value_enum, default_value = "table")]
    pub format: TableFormat,
    /// (`--plot FILE.svg`, among train's flags below, draws throughput against batch size and
    /// loss against wall time.)
    #[command(flatten)]
    pub run: TrainArgs,
}

/// Flags of `downhill sweep`: its own, then `train`'s (hyperparameter lists and --restarts set
/// the models; --save receives the best model; --plot draws every model's loss).
#[derive(Args)]
pub struct SweepArgs {
    /// Output format of the per-model results.
    #[arg(long, value_enum, default_value = "table")]
    pub format: CheckFormat,
    #[command(flatten)]
    pub run: TrainArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Table,
    Json,
}

/// Flags of `downhill check`: its own, then `train`'s for the model, data and optimizer
/// (flags about a run's length, schedule and outputs do not apply).
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
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: CheckFormat,
    /// Plant a fault to see it caught: add DELTA to entry INDEX of the GPU's TENSOR before the
    /// first step, as TENSOR:INDEX:DELTA (e.g. layers.1.weight:3:0.01).
    #[arg(long, value_name = "TENSOR:INDEX:DELTA")]
    pub perturb: Option<String>,
    #[command(flatten)]
    pub run: TrainArgs,
}

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
    /// Skip CSV rows with NaN or infinite values instead of refusing the file.
    #[arg(long)]
    pub drop_nonfinite: bool,
    /// A built-in dataset: digits, linear, blobs or spirals.
    #[arg(long, value_name = "NAME")]
    pub dataset: Option<String>,
    /// Memory-map the --features .npy and stream batches from disk (automatic when the file is
    /// larger than half the available memory).
    #[arg(long)]
    pub mmap: bool,
}

impl DataArgs {
    /// Whether any data source was named.
    pub fn given(&self) -> bool {
        self.features.is_some()
            || self.targets.is_some()
            || self.data.is_some()
            || self.dataset.is_some()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// A GPU adapter when there is one (a software one included), else the CPU engine.
    Auto,
    /// A GPU adapter, or an error.
    Gpu,
    /// The CPU reference engine.
    Cpu,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    Vulkan,
    Metal,
    Dx12,
    Gl,
}

/// Which engine runs.
#[derive(Args, Clone)]
pub struct DeviceArgs {
    /// Where to train (`bench batch-size` takes a list, e.g. gpu,cpu).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "auto")]
    pub device: Vec<DeviceChoice>,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimizerChoice {
    Sgd,
    Adam,
    Adamw,
    Rmsprop,
    Adagrad,
    Adadelta,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResidencyChoice {
    Auto,
    Resident,
    Streamed,
}

/// Flags of `downhill train`.
#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub device: DeviceArgs,

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
    /// Standardise features (mean 0, std 1, fitted on the training rows; saved with the model).
    #[arg(long)]
    pub standardize: bool,

    /// Layer widths from input to output, e.g. 64,32,10 (default: inputs,64,outputs).
    #[arg(long, value_delimiter = ',', value_name = "WIDTHS")]
    pub layers: Vec<usize>,
    /// Hidden layers' activation: identity, relu, leaky_relu, leaky_relu(SLOPE), sigmoid, tanh, gelu.
    #[arg(long, default_value = "relu")]
    pub activation: String,
    /// mse, cross-entropy or bce-logits (default: cross-entropy for class indices, else mse).
    #[arg(long)]
    pub loss: Option<String>,

    /// The optimizer; hyperparameters not given take PyTorch's defaults for it.
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: OptimizerChoice,
    /// The learning rate (sweep and check: a list, e.g. 1e-3,1e-2,1e-1).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub lr: Vec<f64>,
    #[arg(long, allow_negative_numbers = true)]
    pub beta1: Option<f64>,
    #[arg(long, allow_negative_numbers = true)]
    pub beta2: Option<f64>,
    #[arg(long, allow_negative_numbers = true)]
    pub eps: Option<f64>,
    /// Weight decay (sweep and check: a list).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub weight_decay: Vec<f64>,
    /// Momentum of SGD and RMSprop (sweep and check: a list).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub momentum: Vec<f64>,
    #[arg(long, allow_negative_numbers = true)]
    pub dampening: Option<f64>,
    #[arg(long)]
    pub nesterov: bool,
    /// RMSprop's smoothing constant.
    #[arg(long, allow_negative_numbers = true)]
    pub alpha: Option<f64>,
    #[arg(long)]
    pub centered: bool,
    #[arg(long)]
    pub amsgrad: bool,
    /// Adagrad's learning-rate decay.
    #[arg(long, allow_negative_numbers = true)]
    pub lr_decay: Option<f64>,
    /// Adagrad's initial accumulator value.
    #[arg(long, allow_negative_numbers = true)]
    pub initial_accumulator_value: Option<f64>,
    /// AdaDelta's decay of its running averages.
    #[arg(long, allow_negative_numbers = true)]
    pub rho: Option<f64>,

    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Epochs to train (default 10; 30 for the default run on the built-in digits).
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Stop after this many steps in all.
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Keep the file's row order instead of reshuffling every epoch.
    #[arg(long)]
    pub no_shuffle: bool,
    /// Drop each epoch's last partial batch.
    #[arg(long)]
    pub drop_last: bool,
    /// Seed of initialisation, shuffling, the validation split and synthetic data.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sweep and check: train this many initialisations of each setting (seeds --seed,
    /// --seed + 1, ...), side by side.
    #[arg(long, default_value_t = 1)]
    pub restarts: u64,
    /// constant, step:EPOCHS:GAMMA, exponential:GAMMA, cosine or cosine:MIN_LR.
    #[arg(long, default_value = "constant")]
    pub schedule: String,
    /// Linear learning-rate warm-up over this many steps.
    #[arg(long, default_value_t = 0)]
    pub warmup: u64,
    /// Stop when the validation loss has not improved for this many epochs (keeping the best model).
    #[arg(long, value_name = "PATIENCE")]
    pub early_stopping: Option<u64>,
    /// Clip gradients to this global L2 norm.
    #[arg(long, allow_negative_numbers = true)]
    pub clip_norm: Option<f32>,
    /// Batches gathered on the GPU from a resident copy, or streamed from the host.
    #[arg(long, value_enum, default_value = "auto")]
    pub residency: ResidencyChoice,

    /// Start from these parameters (a downhill or PyTorch-layout safetensors file).
    #[arg(long, value_name = "FILE")]
    pub init: Option<PathBuf>,
    /// Save the trained model here (safetensors).
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Write a training-state checkpoint every this many steps.
    #[arg(long, value_name = "STEPS")]
    pub checkpoint_every: Option<u64>,
    /// The training-state file (default: next to --save, as NAME.state.safetensors).
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Resume from a training-state checkpoint.
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,

    /// Read the training loss back every this many steps.
    #[arg(long, default_value_t = 50)]
    pub log_every: u64,
    /// Stop as diverged when a training loss read back exceeds this many times the larger of 1
    /// and the loss before training (0 turns it off; NaN and infinity always stop).
    #[arg(long, value_name = "FACTOR", default_value_t = downhill::train::DEFAULT_DIVERGENCE_THRESHOLD)]
    pub divergence_threshold: f64,
    /// Print only the final result.
    #[arg(long)]
    pub quiet: bool,
    /// Write one JSON line of metrics per epoch to this file.
    #[arg(long, value_name = "FILE.jsonl")]
    pub metrics: Option<PathBuf>,
    /// Plot the loss curves to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

/// Flags of `downhill eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// The saved model.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
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
    /// Write the predicted class (the largest output) instead of the outputs.
    #[arg(long)]
    pub classes: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}
