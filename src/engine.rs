//! The one interface both engines implement over K ≥ 1 models of one architecture; the trainer
//! and every tool speak only to it.
//!
//! Model `k` of an engine has its own starting parameters `θ_k`, its own optimizer
//! hyperparameters (the optimizer kind is shared) and its own optimizer state; every step applies
//! `θ_k ← update_k(θ_k, ∂L(θ_k; batch)/∂θ_k)` to every model that is not frozen, on the same
//! batch, so model `k` follows exactly the trajectory it would follow trained alone. K = 1 is an
//! ordinary run; K > 1 is a sweep or restarts trained side by side.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use crate::accumulate::Part;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gradient_buckets::{GradientSink, check_open, fill_trained, hand_over_model};
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
        (loss.classifies() && self.rows > 0).then(|| self.correct as f64 / self.rows as f64)
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

/// One model of several: its optimizer and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The optimizer with this model's hyperparameters (the same kind for every member).
    pub optimizer: Optimizer,
    /// Its starting parameters.
    pub parameters: Parameters,
}

/// What an engine of K models trains: one architecture and loss, and its members.
#[derive(Debug, Clone, PartialEq)]
pub struct PackSetup {
    /// The architecture all members share.
    pub model: ModelSpec,
    /// The loss all members share.
    pub loss: Loss,
    /// The models, in order.
    pub members: Vec<Member>,
}

impl PackSetup {
    /// One model, `setup`, starting from `parameters`.
    pub fn one(setup: Setup, parameters: &Parameters) -> Self {
        Self {
            model: setup.model,
            loss: setup.loss,
            members: vec![Member {
                optimizer: setup.optimizer,
                parameters: parameters.clone(),
            }],
        }
    }

    /// Checks that there is at least one member, that every member's parameters fit the model,
    /// that their hyperparameters are valid, and that they all use one kind of optimizer.
    pub fn validate(&self) -> Result<()> {
        let first = self
            .members
            .first()
            .ok_or_else(|| Error::Usage("an engine needs at least one model".into()))?;
        for (k, member) in self.members.iter().enumerate() {
            member.optimizer.validate()?;
            member.parameters.check_shapes(&self.model)?;
            if member.optimizer.name() != first.optimizer.name() {
                return Err(Error::Usage(format!(
                    "model {k} of the pack uses {} but model 0 uses {}: the models of one pack \
                     share their kind of optimizer",
                    member.optimizer.name(),
                    first.optimizer.name()
                )));
            }
        }
        Ok(())
    }

    /// The single-model setup of member `k`.
    pub fn setup(&self, k: usize) -> Setup {
        Setup {
            model: self.model.clone(),
            loss: self.loss,
            optimizer: self.members[k].optimizer,
        }
    }
}

/// Checks a model index given to an [`Engine`] method.
pub(crate) fn check_model(k: usize, models: usize) -> Result<()> {
    if k >= models {
        return Err(Error::Usage(format!(
            "model {k} is beyond the engine's {models} models"
        )));
    }
    Ok(())
}

/// Checks the per-model learning rates given to [`Engine::set_learning_rates`]: one valid rate
/// per model.
pub(crate) fn check_learning_rates<'a>(
    optimizers: impl ExactSizeIterator<Item = &'a Optimizer>,
    lrs: &[f64],
) -> Result<()> {
    if lrs.len() != optimizers.len() {
        return Err(Error::Usage(format!(
            "{} learning rates for an engine of {} models",
            lrs.len(),
            optimizers.len()
        )));
    }
    optimizers
        .zip(lrs)
        .try_for_each(|(o, &lr)| check_learning_rate(o, lr))
}

/// A device that trains K ≥ 1 models of one architecture in lock step on the same batches: the
/// CPU reference or a GPU (see the module documentation).
///
/// Training is split at a seam: [`Engine::accumulate`] computes (and accumulates, over the
/// mini-batches of a group) the gradients of every model, which [`Engine::gradients`] exposes
/// and [`Engine::set_gradients`] replaces, and the update applies them: in the same submission
/// when the mini-batch is the last of its group, or by [`Engine::apply_update`]. A plain
/// [`Engine::step`] is both, one command buffer and one submit on a GPU. Engines do not read
/// anything back during a step; losses, gradients and parameters are copied out only when asked
/// for.
pub trait Engine {
    /// A one-line description of where this engine runs (adapter name and backend, or the CPU).
    fn describe(&self) -> String;

    /// How many models the engine trains.
    fn models(&self) -> usize;

    /// Model `k`'s architecture, loss and optimizer (with its starting learning rate).
    fn setup(&self, k: usize) -> Setup;

    /// Forward, loss and backward of every model that is not frozen on `batch`, one mini-batch
    /// of a group (see [`crate::accumulate`]): the gradient of the group's mean loss is
    /// accumulated, and when `part.last`, every such model is updated,
    /// `θ ← update(θ, clip(g))`.
    fn accumulate(&mut self, batch: &Batch<'_>, part: Part) -> Result<()>;

    /// [`Engine::accumulate`] on the rows `indices` of the resident dataset.
    fn accumulate_resident(&mut self, indices: &[u32], part: Part) -> Result<()>;

    /// [`Engine::accumulate`] of a mini-batch after which the caller changes the gradients
    /// before the update (`part.last` is false): each bucket of every model's gradients goes to
    /// `sink` as soon as backward has finished it ([`crate::gradient_buckets`]), so that the
    /// caller can reduce it across devices while backward goes on. The default hands every
    /// bucket over once backward is done.
    fn accumulate_into(
        &mut self,
        batch: &Batch<'_>,
        part: Part,
        sink: &mut dyn GradientSink,
    ) -> Result<()> {
        check_open(part)?;
        self.accumulate(batch, part)?;
        hand_over_all(self, sink)
    }

    /// [`Engine::accumulate_into`] on the rows `indices` of the resident dataset.
    fn accumulate_resident_into(
        &mut self,
        indices: &[u32],
        part: Part,
        sink: &mut dyn GradientSink,
    ) -> Result<()> {
        check_open(part)?;
        self.accumulate_resident(indices, part)?;
        hand_over_all(self, sink)
    }

    /// Replaces model `k`'s accumulated gradients with `flat`, its trained tensors' values one
    /// after another in the model's order (the flat gradient of [`crate::gradient_buckets`]);
    /// the inverse of the buckets an engine hands over.
    fn set_flat_gradients(&mut self, k: usize, flat: &[f32]) -> Result<()> {
        check_model(k, self.models())?;
        let model = self.setup(k).model;
        let trained: Vec<bool> = model.tensors().iter().map(|t| t.trained).collect();
        let mut gradients = Parameters::zeros(&model);
        fill_trained(&trained, flat, &mut gradients)?;
        self.set_gradients(k, &gradients)
    }

    /// Clips and applies the gradients as they stand to every model that is not frozen, and
    /// counts a step: for gradients accumulated without a last mini-batch (and, say, reduced
    /// across devices in between).
    fn apply_update(&mut self) -> Result<()>;

    /// One training step on `batch`: `θ ← update(θ, ∂L(θ; batch)/∂θ)` for every model that is
    /// not frozen.
    fn step(&mut self, batch: &Batch<'_>) -> Result<()> {
        self.accumulate(batch, Part::whole(batch.rows()))
    }

    /// One training step on the rows `indices` of the resident dataset.
    fn step_resident(&mut self, indices: &[u32]) -> Result<()> {
        self.accumulate_resident(indices, Part::whole(indices.len()))
    }

    /// Each model's loss of its most recent mini-batch, before its update (reads back on a GPU).
    fn last_losses(&mut self) -> Result<Vec<f32>>;

    /// Model 0's loss of its most recent mini-batch (see [`Engine::last_losses`]).
    fn last_loss(&mut self) -> Result<f32> {
        Ok(self.last_losses()?[0])
    }

    /// Model `k`'s gradients as accumulated so far (before clipping), shaped like its
    /// parameters.
    fn gradients(&mut self, k: usize) -> Result<Parameters>;

    /// Replaces model `k`'s accumulated gradients (for instance with their sum over devices).
    fn set_gradients(&mut self, k: usize, gradients: &Parameters) -> Result<()>;

    /// Model `k`'s current parameters.
    fn parameters(&mut self, k: usize) -> Result<Parameters>;

    /// Replaces model `k`'s parameters (its optimizer state and the step count are kept).
    fn set_parameters(&mut self, k: usize, parameters: &Parameters) -> Result<()>;

    /// Model `k`'s output for `features` (`[rows, inputs]` → `[rows, outputs]`).
    fn predict(&mut self, k: usize, features: ArrayView2<'_, f32>) -> Result<Array2<f32>>;

    /// Optimizer steps taken.
    fn steps(&self) -> u64;

    /// Keys the dropout masks of the following training passes by `seed` (0 until set): a
    /// training pass of step `s` draws its masks from `(seed, s, layer, row in the dataset,
    /// unit)` ([`crate::model::Dropout`]).
    fn set_mask_seed(&mut self, seed: u64);

    /// Sets each model's learning rate of the following steps (what a schedule does), one rate
    /// per model.
    fn set_learning_rates(&mut self, lrs: &[f64]) -> Result<()>;

    /// Each model's learning rate of its next step.
    fn learning_rates(&self) -> Vec<f64>;

    /// Sets every model's learning rate to `lr`.
    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        self.set_learning_rates(&vec![lr; self.models()])
    }

    /// Model 0's learning rate of its next step.
    fn learning_rate(&self) -> f64 {
        self.learning_rates()[0]
    }

    /// Clips every model's gradients by their own global norm before each update, as
    /// `torch.nn.utils.clip_grad_norm_(max_norm)`: `g ← g · min(1, max_norm / (‖g‖₂ + 1e-6))`.
    /// `None` turns clipping off. [`Engine::gradients`] returns gradients before clipping.
    fn set_clip_norm(&mut self, max_norm: Option<f32>) -> Result<()>;

    /// Stops updating model `k`: its parameters and optimizer state stay as they are, the
    /// others go on. What a frozen model's later mini-batches report (its loss, gradients and
    /// metrics) is left to the engine: the CPU skips it, the GPU computes it with the others.
    fn freeze(&mut self, k: usize) -> Result<()>;

    /// Each model's training metrics accumulated since the last call (over the mini-batches'
    /// own forward passes, before each update), then resets them. Reads back once on a GPU.
    fn take_metrics(&mut self) -> Result<Vec<Metrics>>;

    /// Each model's loss and accuracy on `batch` with its current parameters, without training
    /// (in chunks of the engine's largest batch on a GPU).
    fn evaluate(&mut self, batch: &Batch<'_>) -> Result<Vec<Metrics>>;

    /// Model `k`'s optimizer state.
    fn optimizer_state(&mut self, k: usize) -> Result<OptimizerState>;

    /// Restores model `k`'s optimizer state (slots by name), and the step count.
    fn set_optimizer_state(&mut self, k: usize, state: &OptimizerState) -> Result<()>;

    /// Keeps `data` on the device, so that [`Engine::accumulate_resident`] gathers batches there
    /// (once for all models). Fails when it does not fit the device's limits; the caller then
    /// streams batches.
    fn load_resident(&mut self, data: Arc<Dataset>) -> Result<()>;

    /// Whether forward and backward run on the host's cores (the CPU engine, or a GPU engine on
    /// a software adapter), so that other work on the host (summing gradients across devices,
    /// say) competes with them; a hardware GPU's backward leaves them free.
    fn runs_on_host(&self) -> bool;

    /// Blocks until every submitted step has finished (immediate on the CPU, where steps are
    /// synchronous). Timing code calls this; training code never needs to.
    fn synchronize(&mut self) -> Result<()>;
}

/// Hands every bucket of every model's accumulated gradients to `sink`, read from `engine` as
/// they stand: for an engine that does not hand them over during backward, or a device that had
/// no rows in the group's last mini-batch.
pub fn hand_over_all(
    engine: &mut (impl Engine + ?Sized),
    sink: &mut dyn GradientSink,
) -> Result<()> {
    for k in 0..engine.models() {
        let gradients = engine.gradients(k)?;
        let tensors = gradients.named_tensors();
        hand_over_model(sink, k, &|t| tensors[t].values.as_slice())?;
    }
    Ok(())
}

/// Checks that a training batch of `rows` rows can train `model`: a batch norm needs at least
/// two rows per batch in training, as PyTorch's does.
pub fn check_training_rows(model: &ModelSpec, rows: usize) -> Result<()> {
    if rows < 2 && model.has_running_statistics() {
        return Err(Error::Usage(format!(
            "a training batch of {rows} row cannot train a batch norm, which needs the \
             statistics of at least 2 rows (as PyTorch's BatchNorm1d); use a larger \
             --batch-size, or --drop-last when the last batch of an epoch has 1 row"
        )));
    }
    Ok(())
}
