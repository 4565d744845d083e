//! The one interface both engines implement; the trainer and every tool speak only to it.

use ndarray::{Array2, ArrayView2};

use crate::error::Result;
use crate::loss::{Batch, Loss};
use crate::model::{ModelSpec, Parameters};
use crate::optim::Optimizer;

/// What an engine trains: architecture, loss and optimizer.
#[derive(Debug, Clone, PartialEq)]
pub struct Setup {
    /// The architecture.
    pub model: ModelSpec,
    /// The loss.
    pub loss: Loss,
    /// The optimizer and its hyperparameters.
    pub optimizer: Optimizer,
}

/// A device that trains one model: the CPU reference or a GPU.
///
/// A step is forward, loss, backward and optimizer update on one batch. Engines do not
/// read anything back during a step; the loss, gradients and parameters are copied out only
/// when asked for.
pub trait Engine {
    /// A one-line description of where this engine runs (adapter name and backend, or the CPU).
    fn describe(&self) -> String;

    /// The model, loss and optimizer being trained.
    fn setup(&self) -> &Setup;

    /// One training step on `batch`: `θ ← update(θ, ∂L(θ; batch)/∂θ)`.
    fn step(&mut self, batch: &Batch<'_>) -> Result<()>;

    /// The loss of the most recent step, before its update (reads it back on a GPU).
    fn last_loss(&mut self) -> Result<f32>;

    /// The gradients of the most recent step, shaped like the parameters.
    fn gradients(&mut self) -> Result<Parameters>;

    /// The current parameters.
    fn parameters(&mut self) -> Result<Parameters>;

    /// Replaces the parameters (optimizer state and step count are kept).
    fn set_parameters(&mut self, parameters: &Parameters) -> Result<()>;

    /// The model's output for `features` (`[rows, inputs]` → `[rows, outputs]`).
    fn predict(&mut self, features: ArrayView2<'_, f32>) -> Result<Array2<f32>>;

    /// Number of steps taken.
    fn steps(&self) -> u64;

    /// Blocks until every submitted step has finished (immediate on the CPU, where steps are
    /// synchronous). Timing code calls this; training code never needs to.
    fn synchronize(&mut self) -> Result<()>;
}
