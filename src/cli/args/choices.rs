//! The values some flags choose among, and the parsers of flags with a rule of their own.

use clap::ValueEnum;

/// How a benchmark prints its results.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    Table,
    Json,
    Csv,
}

/// How `check`, `sweep` and `eval` print their results.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Table,
    Json,
}

/// Whether a data-parallel run sums gradients while backward runs (`--overlap`).
#[cfg(feature = "mpi")]
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OverlapChoice {
    /// On a hardware GPU, whose backward leaves the host's cores free; off on the CPU engine
    /// and software adapters, whose backward needs the cores the sum would take.
    Auto,
    /// Every bucket summed on a thread of its own while backward goes on.
    On,
    /// Every bucket summed as backward hands it over, holding backward up.
    Off,
}

/// Where a command runs (`--device`).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// A hardware GPU when there is one, else the CPU engine (software adapters are slower).
    Auto,
    /// The best GPU adapter, a software one included, or an error.
    Gpu,
    /// The CPU reference engine.
    Cpu,
}

/// The graphics API whose adapters are considered (`--backend`).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    Vulkan,
    Metal,
    Dx12,
    Gl,
}

/// Where batches come from (`--residency`).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResidencyChoice {
    Auto,
    Resident,
    Streamed,
}

/// What follows each hidden layer's `Linear` (`--norm`).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NormChoice {
    /// Nothing: the activation applies to the Linear's output.
    None,
    /// PyTorch's nn.LayerNorm(width, eps), with a scale and a shift, before the activation.
    Layer,
    /// PyTorch's nn.BatchNorm1d(width, eps, momentum), with a scale, a shift and running
    /// statistics, before the activation.
    Batch,
}

/// What the targets are (`--task`).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TaskChoice {
    /// Classification when the targets are one column of few small non-negative integers (or
    /// an integer file), regression otherwise.
    Auto,
    /// Class labels: one column of non-negative integers.
    Classification,
    /// Values, even when they are whole numbers.
    Regression,
}

/// `--accumulate K`: a count of mini-batches per optimizer step, at least 1.
pub(super) fn mini_batches_per_step(value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(0) => Err("0 mini-batches make no step; give at least 1".into()),
        Ok(k) => Ok(k),
        Err(_) => Err(format!("`{value}` is not a whole number of mini-batches")),
    }
}
