//! GPU-against-CPU validation: the same models, initial parameters and batches through an
//! engine under test and the reference, run by the one training loop ([`crate::train::train`])
//! over both in lock step, comparing each model's loss, gradients and parameters after every
//! optimizer step under one rule, `|a − b| ≤ abs + rel·|b|` (see [`Tolerance`]). An engine of
//! several models is checked model by model against each model trained alone on the CPU.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use crate::accumulate::Part;
use crate::compare::Tolerance;
use crate::data::Dataset;
use crate::engine::{Engine, Metrics, OptimizerState, Setup};
use crate::error::{Error, Result};
use crate::loss::Batch;
use crate::model::Parameters;
use crate::train::{Divergence, Silent, TrainConfig, TrainData, run};

/// The largest disagreement in one quantity at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// Largest `|a − b|`.
    pub max_abs: f64,
    /// Largest `|a − b| / |b|` (entries where `b = 0` count as `|a − b|`).
    pub max_rel: f64,
    /// Where the entry furthest over (or nearest to) the tolerance is: tensor name.
    pub tensor: String,
    /// Row-major index in that tensor.
    pub index: usize,
    /// Its value in the engine under test.
    pub tested: f32,
    /// Its value in the reference.
    pub reference: f32,
    /// Whether every entry is within the tolerance.
    pub passed: bool,
}

/// One step's comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckStep {
    /// Step number, from 1.
    pub step: u64,
    /// The loss of the step's (last) mini-batch.
    pub loss: Difference,
    /// The gradients of the step (before clipping).
    pub gradients: Difference,
    /// The parameters after the step's update.
    pub parameters: Difference,
}

/// A whole check of one model.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// The engine under test, described.
    pub tested: String,
    /// The reference engine, described.
    pub reference: String,
    /// The tolerance applied.
    pub tolerance: Tolerance,
    /// Every step.
    pub steps: Vec<CheckStep>,
    /// Set when the model under test diverged (its loss or update stopped being finite, or its
    /// loss grew past the threshold): the check's later steps compare a run that no longer
    /// trains, and the report fails.
    pub diverged: Option<Divergence>,
    /// Whether every quantity passed at every step.
    pub passed: bool,
    /// The free tensors ([`ModelSpec::free_tensors`](crate::model::ModelSpec::free_tensors)):
    /// compared as gradients, not as values after the updates.
    pub values_not_compared: Vec<String>,
}

fn difference(
    named: Vec<(String, Vec<f32>)>,
    reference: Vec<(String, Vec<f32>)>,
    tolerance: Tolerance,
) -> Difference {
    let mut d = Difference {
        max_abs: 0.0,
        max_rel: 0.0,
        tensor: String::new(),
        index: 0,
        tested: 0.0,
        reference: 0.0,
        passed: true,
    };
    let mut worst = -1.0f64;
    for ((name, a), (_, b)) in named.iter().zip(&reference) {
        for (index, (&x, &y)) in a.iter().zip(b).enumerate() {
            let abs = f64::from((x - y).abs());
            let abs = if x == y {
                0.0
            } else if abs.is_nan() {
                f64::INFINITY
            } else {
                abs
            };
            let rel = if y == 0.0 {
                abs
            } else {
                abs / f64::from(y.abs())
            };
            let ratio = abs / f64::from(tolerance.abs + tolerance.rel * y.abs());
            d.max_abs = d.max_abs.max(abs);
            d.max_rel = d.max_rel.max(rel);
            if ratio > worst {
                worst = ratio;
                (d.tensor, d.index, d.tested, d.reference) = (name.clone(), index, x, y);
            }
            d.passed &= tolerance.allows(x, y);
        }
    }
    d
}

fn tensors(p: &Parameters) -> Vec<(String, Vec<f32>)> {
    p.named_tensors()
        .iter()
        .map(|t| (t.name.clone(), t.values.clone()))
        .collect()
}

/// The tensors of `p` but those named in `skipped`.
fn tensors_but(p: &Parameters, skipped: &[String]) -> Vec<(String, Vec<f32>)> {
    let mut all = tensors(p);
    all.retain(|(name, _)| !skipped.contains(name));
    all
}

/// Runs the training run `config` describes through `tested` and `reference` in lock step
/// (engines of as many models, which must start from the same parameters and optimizers) and
/// compares each model after each optimizer step: one report per model.
pub fn check(
    tested: &mut dyn Engine,
    reference: &mut dyn Engine,
    data: &TrainData,
    config: &TrainConfig,
    tolerance: Tolerance,
) -> Result<Vec<CheckReport>> {
    let models = tested.models();
    if reference.models() != models {
        return Err(Error::Usage(format!(
            "the engine under test holds {models} models but the reference {}",
            reference.models()
        )));
    }
    let (tested_name, reference_name) = (tested.describe(), reference.describe());
    let free = tested.setup(0).model.free_tensors();
    let mut both = Lockstep {
        tested,
        reference,
        tolerance,
        free: free.clone(),
        steps: vec![Vec::new(); models],
    };
    // A model whose loss stops being finite is reported, not an error: the check goes on
    // comparing it (the lock step never freezes a model) until every model has diverged.
    let report = run(&mut both, data, None, config, None, &mut Silent, true)?;
    Ok(both
        .steps
        .into_iter()
        .zip(report.models)
        .map(|(steps, model)| CheckReport {
            tested: tested_name.clone(),
            reference: reference_name.clone(),
            tolerance,
            passed: model.diverged.is_none()
                && steps
                    .iter()
                    .all(|s| s.loss.passed && s.gradients.passed && s.parameters.passed),
            steps,
            diverged: model.diverged,
            values_not_compared: free.clone(),
        })
        .collect())
}

/// Two engines driven as one: every call goes to both, what is read comes from the engine under
/// test, and after every update each model of the two is compared.
struct Lockstep<'a> {
    tested: &'a mut dyn Engine,
    reference: &'a mut dyn Engine,
    tolerance: Tolerance,
    /// The model's free tensors ([`ModelSpec::free_tensors`](crate::model::ModelSpec::free_tensors)):
    /// their gradients are compared, their values after updates are not.
    free: Vec<String>,
    steps: Vec<Vec<CheckStep>>,
}

impl Lockstep<'_> {
    /// Compares every model's loss, gradients and parameters after an update.
    fn compare(&mut self) -> Result<()> {
        let (losses, reference_losses) =
            (self.tested.last_losses()?, self.reference.last_losses()?);
        let step = self.tested.steps();
        for (k, model_steps) in self.steps.iter_mut().enumerate() {
            let loss = |l: &[f32]| vec![("loss".to_string(), vec![l[k]])];
            model_steps.push(CheckStep {
                step,
                loss: difference(loss(&losses), loss(&reference_losses), self.tolerance),
                gradients: difference(
                    tensors(&self.tested.gradients(k)?),
                    tensors(&self.reference.gradients(k)?),
                    self.tolerance,
                ),
                parameters: difference(
                    tensors_but(&self.tested.parameters(k)?, &self.free),
                    tensors_but(&self.reference.parameters(k)?, &self.free),
                    self.tolerance,
                ),
            });
        }
        Ok(())
    }
}

impl Engine for Lockstep<'_> {
    fn describe(&self) -> String {
        format!(
            "{} against {}",
            self.tested.describe(),
            self.reference.describe()
        )
    }

    fn models(&self) -> usize {
        self.tested.models()
    }

    fn setup(&self, k: usize) -> Setup {
        self.tested.setup(k)
    }

    fn accumulate(&mut self, batch: &Batch<'_>, part: Part) -> Result<()> {
        self.tested.accumulate(batch, part)?;
        self.reference.accumulate(batch, part)?;
        if part.last {
            self.compare()?;
        }
        Ok(())
    }

    fn set_mask_seed(&mut self, seed: u64) {
        self.tested.set_mask_seed(seed);
        self.reference.set_mask_seed(seed);
    }

    fn accumulate_resident(&mut self, indices: &[u32], part: Part) -> Result<()> {
        self.tested.accumulate_resident(indices, part)?;
        self.reference.accumulate_resident(indices, part)?;
        if part.last {
            self.compare()?;
        }
        Ok(())
    }

    fn apply_update(&mut self) -> Result<()> {
        self.tested.apply_update()?;
        self.reference.apply_update()?;
        self.compare()
    }

    fn last_losses(&mut self) -> Result<Vec<f32>> {
        self.tested.last_losses()
    }

    fn gradients(&mut self, k: usize) -> Result<Parameters> {
        self.tested.gradients(k)
    }

    fn set_gradients(&mut self, k: usize, gradients: &Parameters) -> Result<()> {
        self.tested.set_gradients(k, gradients)?;
        self.reference.set_gradients(k, gradients)
    }

    fn parameters(&mut self, k: usize) -> Result<Parameters> {
        self.tested.parameters(k)
    }

    fn set_parameters(&mut self, k: usize, parameters: &Parameters) -> Result<()> {
        self.tested.set_parameters(k, parameters)?;
        self.reference.set_parameters(k, parameters)
    }

    fn predict(&mut self, k: usize, features: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.tested.predict(k, features)
    }

    fn runs_on_host(&self) -> bool {
        self.tested.runs_on_host()
    }

    fn steps(&self) -> u64 {
        self.tested.steps()
    }

    fn set_learning_rates(&mut self, lrs: &[f64]) -> Result<()> {
        self.tested.set_learning_rates(lrs)?;
        self.reference.set_learning_rates(lrs)
    }

    fn learning_rates(&self) -> Vec<f64> {
        self.tested.learning_rates()
    }

    fn set_clip_norm(&mut self, max_norm: Option<f32>) -> Result<()> {
        self.tested.set_clip_norm(max_norm)?;
        self.reference.set_clip_norm(max_norm)
    }

    /// Keeps both engines stepping model `k`, so that its steps are still compared: a check
    /// reports a divergence rather than hiding it.
    fn freeze(&mut self, k: usize) -> Result<()> {
        crate::engine::check_model(k, self.tested.models())
    }

    fn take_metrics(&mut self) -> Result<Vec<Metrics>> {
        self.reference.take_metrics()?;
        self.tested.take_metrics()
    }

    fn evaluate(&mut self, batch: &Batch<'_>) -> Result<Vec<Metrics>> {
        self.tested.evaluate(batch)
    }

    fn optimizer_state(&mut self, k: usize) -> Result<OptimizerState> {
        self.tested.optimizer_state(k)
    }

    fn set_optimizer_state(&mut self, k: usize, state: &OptimizerState) -> Result<()> {
        self.tested.set_optimizer_state(k, state)?;
        self.reference.set_optimizer_state(k, state)
    }

    fn load_resident(&mut self, data: Arc<Dataset>) -> Result<()> {
        self.tested.load_resident(Arc::clone(&data))?;
        self.reference.load_resident(data)
    }

    fn synchronize(&mut self) -> Result<()> {
        self.tested.synchronize()?;
        self.reference.synchronize()
    }
}
