//! GPU-against-CPU validation: the same models, initial parameters and batches through a pack
//! under test and the reference, step by step, comparing each model's loss, gradients and
//! parameters under one rule, `|a − b| ≤ abs + rel·|b|` (see [`Tolerance`]). A single engine is
//! an engine of one model; a GPU engine of several is checked model by model against
//! each model trained alone on the CPU.

use crate::compare::Tolerance;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::loss::Batch;
use crate::model::Parameters;

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
    /// The batch loss.
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
    /// Whether every quantity passed at every step.
    pub passed: bool,
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
        .into_iter()
        .map(|t| (t.name, t.values))
        .collect()
}

/// Runs every batch through `tested` and `reference` (packs of as many models, which must start
/// from the same parameters and optimizers) and compares each model after each step: one
/// report per model.
pub fn check<'a>(
    tested: &mut dyn Engine,
    reference: &mut dyn Engine,
    batches: impl IntoIterator<Item = Batch<'a>>,
    tolerance: Tolerance,
) -> Result<Vec<CheckReport>> {
    let models = tested.models();
    if reference.models() != models {
        return Err(Error::Usage(format!(
            "the pack under test holds {models} models but the reference {}",
            reference.models()
        )));
    }
    let mut steps: Vec<Vec<CheckStep>> = vec![Vec::new(); models];
    for (i, batch) in batches.into_iter().enumerate() {
        tested.step(&batch)?;
        reference.step(&batch)?;
        let (losses, reference_losses) = (tested.last_losses()?, reference.last_losses()?);
        for (k, model_steps) in steps.iter_mut().enumerate() {
            let loss = |l: &[f32]| vec![("loss".to_string(), vec![l[k]])];
            model_steps.push(CheckStep {
                step: i as u64 + 1,
                loss: difference(loss(&losses), loss(&reference_losses), tolerance),
                gradients: difference(
                    tensors(&tested.gradients(k)?),
                    tensors(&reference.gradients(k)?),
                    tolerance,
                ),
                parameters: difference(
                    tensors(&tested.parameters(k)?),
                    tensors(&reference.parameters(k)?),
                    tolerance,
                ),
            });
        }
    }
    Ok(steps
        .into_iter()
        .map(|steps| CheckReport {
            tested: tested.describe(),
            reference: reference.describe(),
            tolerance,
            passed: steps
                .iter()
                .all(|s| s.loss.passed && s.gradients.passed && s.parameters.passed),
            steps,
        })
        .collect())
}
