//! The one interface both engines implement; the trainer and every tool speak only to it.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::loss::{Batch, Loss};
use crate::model::{ModelSpec, Parameters};
use crate::optim::Optimizer;

/// Running totals over the rows seen: per-sample losses summed, rows, and rows classified right.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Metrics {
    /// `Σ_batches L_batch · rows_batch` (f32, as accumulated on the device).
    pub loss_sum: f32,
    /// Rows seen.
    pub rows: u64,
    /// Rows whose prediction was right (see [`Metrics::accuracy`]).
    pub correct: u64,
    /// Whether an optimizer step met a gradient or produced a parameter that is NaN or infinite
    /// (set by the update itself, so it is known at the next read-back without a stall).
    pub nonfinite: bool,
}

impl Metrics {
    /// The mean loss per row; NaN when no rows were seen or the loss was not finite.
    pub fn loss(&self) -> f64 {
        f64::from(self.loss_sum) / self.rows as f64
    }

    /// What shows that training diverged, if anything does: a mean loss that is not finite, or
    /// the update's flag for a gradient or parameter that is NaN or infinite.
    pub fn divergence(&self) -> Option<String> {
        if self.rows > 0 && !self.loss().is_finite() {
            Some(format!("the mean loss read back is {}", self.loss()))
        } else if self.nonfinite {
            Some("a gradient or an updated parameter is NaN or infinite".into())
        } else {
            None
        }
    }

    /// The fraction of rows classified right, for losses that classify: cross-entropy (the first
    /// largest output is the class) and binary cross-entropy (every logit is on the target's
    /// side of 0). `None` for mse.
    pub fn accuracy(&self, loss: Loss) -> Option<f64> {
        (loss != Loss::Mse && self.rows > 0).then(|| self.correct as f64 / self.rows as f64)
    }
}

/// The optimizer's per-parameter state, for training-state checkpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerState {
    /// Updates applied so far (Adam's `t`, Adagrad's step, SGD's first-step rule).
    pub steps: u64,
    /// Each state slot in use, by PyTorch's name (`exp_avg`, ...), shaped like the parameters.
    pub slots: Vec<(String, Parameters)>,
}

/// Checks a learning rate given to [`Engine::set_learning_rate`].
pub(crate) fn check_learning_rate(optimizer: &Optimizer, lr: f64) -> Result<()> {
    optimizer.with_lr(lr).validate()
}

/// Checks that `state` has exactly the slots `setup`'s optimizer uses, shaped like the model.
pub(crate) fn check_optimizer_state(setup: &Setup, state: &OptimizerState) -> Result<()> {
    let wanted: Vec<&str> = setup
        .optimizer
        .state_slots()
        .iter()
        .map(|s| s.name)
        .collect();
    let given: Vec<&str> = state.slots.iter().map(|(n, _)| n.as_str()).collect();
    if wanted != given {
        return Err(Error::Data {
            source_name: "optimizer state".into(),
            message: format!(
                "{} with these options keeps {wanted:?}, but the state holds {given:?}; was it saved \
                 with a different optimizer?",
                setup.optimizer.name()
            ),
        });
    }
    state
        .slots
        .iter()
        .try_for_each(|(_, p)| p.check_shapes(&setup.model))
}

/// Checks a clipping norm given to [`Engine::set_clip_norm`].
pub(crate) fn check_clip_norm(max_norm: Option<f32>) -> Result<()> {
    match max_norm {
        Some(n) if !(n.is_finite() && n > 0.0) => Err(Error::Usage(format!(
            "gradient clipping norm {n} must be a positive number within f32's range (at most \
             3.4e38)"
        ))),
        _ => Ok(()),
    }
}

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

    /// Sets the learning rate of the following steps (what a schedule does).
    fn set_learning_rate(&mut self, lr: f64) -> Result<()>;

    /// The learning rate of the next step.
    fn learning_rate(&self) -> f64;

    /// Clips gradients by their global norm before each update, as
    /// `torch.nn.utils.clip_grad_norm_(max_norm)`: `g ← g · min(1, max_norm / (‖g‖₂ + 1e-6))`.
    /// `None` turns clipping off. [`Engine::gradients`] returns gradients before clipping.
    fn set_clip_norm(&mut self, max_norm: Option<f32>) -> Result<()>;

    /// The training metrics accumulated since the last call (over the steps' own forward
    /// passes, before each update), then resets them. Reads back on a GPU.
    fn take_metrics(&mut self) -> Result<Metrics>;

    /// Loss and accuracy of the current parameters on `batch`, without training (in chunks of
    /// the engine's maximum batch on a GPU).
    fn evaluate(&mut self, batch: &Batch<'_>) -> Result<Metrics>;

    /// The optimizer's state.
    fn optimizer_state(&mut self) -> Result<OptimizerState>;

    /// Restores the optimizer's state (slots by name, and the step count).
    fn set_optimizer_state(&mut self, state: &OptimizerState) -> Result<()>;

    /// Keeps `data` on the device, so that [`Engine::step_resident`] gathers batches there.
    /// Fails when it does not fit the device's limits; the caller then streams batches.
    fn load_resident(&mut self, data: Arc<Dataset>) -> Result<()>;

    /// One training step on the rows `indices` of the resident dataset.
    fn step_resident(&mut self, indices: &[u32]) -> Result<()>;

    /// Blocks until every submitted step has finished (immediate on the CPU, where steps are
    /// synchronous). Timing code calls this; training code never needs to.
    fn synchronize(&mut self) -> Result<()>;
}
