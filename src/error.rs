//! The library's error type: every failure a caller can cause says what was wrong,
//! where, and what to do about it.

/// `x` as a person writes it: `0.01`, `0.00000001` or `250`, and `1e300` or `3.2e-12` (not 301
/// digits) outside `[1e-9, 1e6)`.
pub fn readable(x: f64) -> String {
    if x == 0.0 || !x.is_finite() || (1e-9..1e6).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// Result alias used throughout downhill.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when building or running an engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No wgpu adapter matched the request (or none exists at all).
    #[error("no GPU adapter found{filter}; adapters present: {available}; {hint}")]
    NoAdapter {
        /// The filter that was applied, already phrased (" on backend Metal", or empty).
        filter: String,
        /// The adapters that exist, by index, name, backend and type, or "none".
        available: String,
        /// What to do: name one of those present, or, where there is no Vulkan adapter at all,
        /// install Mesa's software one.
        hint: String,
    },

    /// Slow work was stopped through its [`Cancel`](crate::gpu::Cancel) flag.
    #[error(
        "stopped while {during}, as asked; nothing was trained, and the matmul tiles timed \
         before the stop stay cached for the next run"
    )]
    Cancelled {
        /// What was being done (`timing matmul tiles`).
        during: String,
    },

    /// The adapter was found but refused to open a device.
    #[error("could not open a device on adapter `{adapter}`: {message}")]
    RequestDevice {
        /// Adapter name.
        adapter: String,
        /// wgpu's reason.
        message: String,
    },

    /// A model and batch would need more device memory than the adapter has.
    #[error(
        "this model and batch need about {} of device memory ({breakdown}), over the {} \
         available on this adapter; {hint}",
        crate::gpu::mib(*needed),
        crate::gpu::mib(*budget)
    )]
    DeviceMemory {
        /// Bytes estimated.
        needed: u64,
        /// The adapter's device-local memory in bytes.
        budget: u64,
        /// What the bytes are for, largest first.
        breakdown: String,
        /// What to do about it.
        hint: &'static str,
    },

    /// A model and batch would need more of the host's memory than is available.
    #[error(
        "this model and batch need about {} of memory ({breakdown}), over the {} available on \
         this machine; use fewer or narrower layers, or a smaller --batch-size",
        crate::units::size(*needed),
        crate::units::size(*available)
    )]
    HostMemory {
        /// Bytes estimated.
        needed: u64,
        /// Bytes available (Linux's `MemAvailable`).
        available: u64,
        /// What the bytes are for, largest first.
        breakdown: String,
    },

    /// A tensor's GPU buffer would exceed one of the device's limits.
    #[error(
        "tensor `{tensor}` needs {bytes} bytes, over this device's {limit_name} of {limit} bytes; \
         {hint}"
    )]
    BufferTooLarge {
        /// The tensor's name, such as `layers.0.weight` or `activations.1 (batch 1024)`.
        tensor: String,
        /// Bytes it needs.
        bytes: u64,
        /// The limit that it exceeds (`max_buffer_size` or `max_storage_buffer_binding_size`).
        limit_name: &'static str,
        /// The limit's value in bytes.
        limit: u64,
        /// What to do about it, which depends on the tensor.
        hint: &'static str,
    },

    /// An optimizer hyperparameter is outside its valid range.
    #[error("invalid {optimizer} hyperparameter {name} = {}: {reason}", readable(*value))]
    InvalidHyperparameter {
        /// Optimizer name (`SGD`, `Adam`, ...).
        optimizer: &'static str,
        /// Hyperparameter name as PyTorch spells it.
        name: &'static str,
        /// The value given.
        value: f64,
        /// Why it is invalid.
        reason: &'static str,
    },

    /// The model description is inconsistent (zero widths, layers that do not chain).
    #[error("invalid model: {0}")]
    InvalidModel(String),

    /// A request that cannot be carried out as given: a flag or setting out of range, options
    /// that conflict, or a call made out of order. The message says which and what to do.
    #[error("{0}")]
    Usage(String),

    /// An array given to the library has the wrong shape.
    #[error("shape mismatch for {what}: expected {expected}, got {got}")]
    Shape {
        /// What was being checked (`layers.1.weight`, `batch features`).
        what: String,
        /// The expected shape, written out.
        expected: String,
        /// The shape received.
        got: String,
    },

    /// Targets do not fit the loss or the output layer.
    #[error("invalid targets: {0}")]
    Targets(String),

    /// A batch has more rows than the engine was built for.
    #[error(
        "batch of {rows} rows exceeds this engine's maximum batch size of {max}; \
         build the engine with a larger max_batch"
    )]
    BatchTooLarge {
        /// Rows in the batch.
        rows: usize,
        /// The engine's maximum.
        max: usize,
    },

    /// A batch with no rows.
    #[error("empty batch: a training step needs at least one row")]
    EmptyBatch,

    /// `last_loss` was asked for before any step ran.
    #[error("no training step has run yet, so there is no loss to read; call step() first")]
    NoStepYet,

    /// The loss, a gradient or a parameter became NaN or infinite.
    #[error(
        "training diverged: at step {step}, {what} (learning rate {}); lower the learning rate \
         (e.g. --lr {}), or clip gradients with --clip-norm; the last checkpoint written, if any, \
         is from before this and was kept",
        readable(*lr),
        readable(*suggested)
    )]
    Diverged {
        /// The step at which it was seen (the first read-back after it happened).
        step: u64,
        /// What was not finite, such as `the mean loss read back is NaN`.
        what: String,
        /// The learning rate then.
        lr: f64,
        /// A tenth of the learning rate the run was given.
        suggested: f64,
    },

    /// A data or checkpoint file is malformed or does not fit the model.
    #[error("{source_name}: {message}")]
    Data {
        /// The file (or built-in dataset) and, where known, the position in it.
        source_name: String,
        /// What is wrong and what to do.
        message: String,
    },

    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// `could not read`, `could not write`, ...
        action: &'static str,
        /// The path.
        path: String,
        /// The operating system's reason.
        source: std::io::Error,
    },

    /// A trained model could not be written where asked; `outcome` says where it went instead,
    /// or that it is lost.
    #[error("{failure}; {outcome}")]
    NotSaved {
        /// Why the asked-for path failed.
        failure: Box<Error>,
        /// Where the model went instead, or what was lost.
        outcome: String,
    },

    /// The ranks of a data-parallel run hold different parameters: a replica drifted.
    #[error(
        "the ranks' replicas differ after step {step}: parameter checksums {checksums} (rank 0 \
         first); every rank should hold the same parameters after each update"
    )]
    ReplicasDiffer {
        /// The optimizer step after which they were compared.
        step: u64,
        /// Each rank's checksum of every model's parameters, in rank order.
        checksums: String,
    },

    /// The GPU reported an error (validation, out of memory, lost device) while doing something.
    #[error("GPU error while {context}: {message}")]
    Gpu {
        /// What downhill was doing.
        context: String,
        /// wgpu's message.
        message: String,
    },
}
