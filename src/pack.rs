//! Several models of one architecture trained side by side on the same batches: the interface a
//! learning-rate sweep or a set of random restarts trains through, and the plain implementation
//! that steps independent engines one after another.
//!
//! Model `k` of a pack has its own starting parameters `θ_k`, its own optimizer hyperparameters
//! (the optimizer kind is shared) and its own optimizer state; every step applies
//! `θ_k ← update_k(θ_k, ∂L(θ_k; batch)/∂θ_k)` to every model that is not frozen, on the same
//! batch. Model `k` of a pack therefore follows exactly the trajectory it would follow trained
//! alone.

use std::sync::Arc;

use crate::cpu::CpuEngine;
use crate::data::Dataset;
use crate::engine::{Engine, Metrics, Setup};
use crate::error::{Error, Result};
use crate::loss::{Batch, Loss};
use crate::model::{ModelSpec, Parameters};
use crate::optim::Optimizer;

/// One model of a pack: its optimizer and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The optimizer with this model's hyperparameters (the same kind for every member).
    pub optimizer: Optimizer,
    /// Its starting parameters.
    pub parameters: Parameters,
}

/// What a pack trains: one architecture and loss, and its members.
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
    /// Checks that there is at least one member, that every member's parameters fit the model,
    /// that their hyperparameters are valid, and that they all use one kind of optimizer.
    pub fn validate(&self) -> Result<()> {
        let first = self
            .members
            .first()
            .ok_or_else(|| Error::Usage("a pack needs at least one model".into()))?;
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

/// K models trained in lock step on the same batches (see the module documentation).
///
/// Like [`Engine`], nothing is read back during a step.
pub trait Pack {
    /// A one-line description of where the pack runs.
    fn describe(&self) -> String;

    /// How many models the pack holds.
    fn models(&self) -> usize;

    /// The single-model setup of model `k`.
    fn setup(&self, k: usize) -> Setup;

    /// One training step of every model that is not frozen, on `batch`.
    fn step(&mut self, batch: &Batch<'_>) -> Result<()>;

    /// Keeps `data` on the device, so that [`Pack::step_resident`] gathers batches there (once
    /// for all models). Fails when it does not fit; the caller then streams batches.
    fn load_resident(&mut self, data: Arc<Dataset>) -> Result<()>;

    /// One training step on the rows `indices` of the resident dataset.
    fn step_resident(&mut self, indices: &[u32]) -> Result<()>;

    /// Sets the learning rate of each model's following steps, one rate per model.
    fn set_learning_rates(&mut self, lrs: &[f64]) -> Result<()>;

    /// Clips every model's gradients by their own global norm (see
    /// [`Engine::set_clip_norm`]); `None` turns clipping off.
    fn set_clip_norm(&mut self, max_norm: Option<f32>) -> Result<()>;

    /// Stops updating model `k`: its parameters and optimizer state stay as they are, the
    /// others go on.
    fn freeze(&mut self, k: usize) -> Result<()>;

    /// Each model's training metrics since the last call, then resets them (reads back once on
    /// a GPU).
    fn take_metrics(&mut self) -> Result<Vec<Metrics>>;

    /// Each model's loss and accuracy on `batch`, without training.
    fn evaluate(&mut self, batch: &Batch<'_>) -> Result<Vec<Metrics>>;

    /// Each model's loss of the most recent step, before its update.
    fn last_losses(&mut self) -> Result<Vec<f32>>;

    /// Model `k`'s gradients of the most recent step.
    fn gradients(&mut self, k: usize) -> Result<Parameters>;

    /// Model `k`'s current parameters.
    fn parameters(&mut self, k: usize) -> Result<Parameters>;

    /// Replaces model `k`'s parameters (its optimizer state is kept).
    fn set_parameters(&mut self, k: usize, parameters: &Parameters) -> Result<()>;

    /// Steps taken.
    fn steps(&self) -> u64;

    /// Blocks until every submitted step has finished.
    fn synchronize(&mut self) -> Result<()>;
}

/// Checks a model index given to a [`Pack`] method.
pub(crate) fn check_model(k: usize, models: usize) -> Result<()> {
    if k >= models {
        return Err(Error::Usage(format!(
            "model {k} is beyond the pack's {models} models"
        )));
    }
    Ok(())
}

/// Checks that [`Pack::set_learning_rates`] was given one rate per model.
fn check_rate_count(lrs: &[f64], models: usize) -> Result<()> {
    if lrs.len() != models {
        return Err(Error::Usage(format!(
            "{} learning rates for a pack of {models} models",
            lrs.len()
        )));
    }
    Ok(())
}

/// Checks the per-model learning rates given to [`Pack::set_learning_rates`].
pub(crate) fn check_learning_rates(setup: &PackSetup, lrs: &[f64]) -> Result<()> {
    check_rate_count(lrs, setup.members.len())?;
    setup
        .members
        .iter()
        .zip(lrs)
        .try_for_each(|(m, &lr)| m.optimizer.with_lr(lr).validate())
}

/// A pack of independent engines, stepped one after another: how the CPU reference trains a
/// pack, and the "each model trained alone" that a packed engine is checked against.
pub struct Separate {
    engines: Vec<Box<dyn Engine>>,
    frozen: Vec<bool>,
    steps: u64,
}

impl Separate {
    /// A pack of `engines` (at least one), which should share their architecture and loss.
    pub fn new(engines: Vec<Box<dyn Engine>>) -> Result<Self> {
        let Some(first) = engines.first() else {
            return Err(Error::Usage("a pack needs at least one model".into()));
        };
        let (model, loss) = (&first.setup().model, first.setup().loss);
        if let Some(k) = engines
            .iter()
            .position(|e| e.setup().model != *model || e.setup().loss != loss)
        {
            return Err(Error::Usage(format!(
                "engine {k} trains another architecture or loss than engine 0; a pack shares both"
            )));
        }
        Ok(Self {
            frozen: vec![false; engines.len()],
            steps: first.steps(),
            engines,
        })
    }

    /// Each member of `setup` on its own CPU reference engine.
    pub fn cpu(setup: &PackSetup) -> Result<Self> {
        setup.validate()?;
        let engines = (0..setup.members.len())
            .map(|k| {
                CpuEngine::new(setup.setup(k), &setup.members[k].parameters)
                    .map(|e| Box::new(e) as Box<dyn Engine>)
            })
            .collect::<Result<Vec<_>>>()?;
        Self::new(engines)
    }

    /// Engine `k` of the pack.
    pub fn engine(&mut self, k: usize) -> &mut dyn Engine {
        self.engines[k].as_mut()
    }

    fn each_active(&mut self, mut f: impl FnMut(&mut dyn Engine) -> Result<()>) -> Result<()> {
        for (engine, frozen) in self.engines.iter_mut().zip(&self.frozen) {
            if !frozen {
                f(engine.as_mut())?;
            }
        }
        Ok(())
    }
}

impl Pack for Separate {
    fn describe(&self) -> String {
        match self.engines.len() {
            1 => self.engines[0].describe(),
            n => format!("{n} models, each alone on {}", self.engines[0].describe()),
        }
    }

    fn models(&self) -> usize {
        self.engines.len()
    }

    fn setup(&self, k: usize) -> Setup {
        self.engines[k].setup().clone()
    }

    fn step(&mut self, batch: &Batch<'_>) -> Result<()> {
        self.each_active(|e| e.step(batch))?;
        self.steps += 1;
        Ok(())
    }

    fn load_resident(&mut self, data: Arc<Dataset>) -> Result<()> {
        self.engines
            .iter_mut()
            .try_for_each(|e| e.load_resident(Arc::clone(&data)))
    }

    fn step_resident(&mut self, indices: &[u32]) -> Result<()> {
        self.each_active(|e| e.step_resident(indices))?;
        self.steps += 1;
        Ok(())
    }

    fn set_learning_rates(&mut self, lrs: &[f64]) -> Result<()> {
        check_rate_count(lrs, self.engines.len())?;
        self.engines
            .iter_mut()
            .zip(lrs)
            .try_for_each(|(e, &lr)| e.set_learning_rate(lr))
    }

    fn set_clip_norm(&mut self, max_norm: Option<f32>) -> Result<()> {
        self.engines
            .iter_mut()
            .try_for_each(|e| e.set_clip_norm(max_norm))
    }

    fn freeze(&mut self, k: usize) -> Result<()> {
        check_model(k, self.engines.len())?;
        self.frozen[k] = true;
        Ok(())
    }

    fn take_metrics(&mut self) -> Result<Vec<Metrics>> {
        self.engines.iter_mut().map(|e| e.take_metrics()).collect()
    }

    fn evaluate(&mut self, batch: &Batch<'_>) -> Result<Vec<Metrics>> {
        self.engines.iter_mut().map(|e| e.evaluate(batch)).collect()
    }

    fn last_losses(&mut self) -> Result<Vec<f32>> {
        self.engines.iter_mut().map(|e| e.last_loss()).collect()
    }

    fn gradients(&mut self, k: usize) -> Result<Parameters> {
        check_model(k, self.engines.len())?;
        self.engines[k].gradients()
    }

    fn parameters(&mut self, k: usize) -> Result<Parameters> {
        check_model(k, self.engines.len())?;
        self.engines[k].parameters()
    }

    fn set_parameters(&mut self, k: usize, parameters: &Parameters) -> Result<()> {
        check_model(k, self.engines.len())?;
        self.engines[k].set_parameters(parameters)
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn synchronize(&mut self) -> Result<()> {
        self.engines.iter_mut().try_for_each(|e| e.synchronize())
    }
}
