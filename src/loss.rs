//! Losses and the targets they take. Every loss is a mean over the batch.
//!
//! With `ŷ` the model output (`[B, C]`) and `N` the loss's normaliser:
//! - `Mse`: `L = (1/(B·C)) Σ_{b,c} (ŷ_bc − y_bc)²`, `∂L/∂ŷ = 2(ŷ − y)/(B·C)` (`nn.MSELoss`).
//! - `CrossEntropy`: `L = (1/B) Σ_b [lse(ŷ_b) − Σ_c y_bc ŷ_bc]` where `lse` is the log-sum-exp
//!   over classes and `y_b` is one-hot (class indices) or any soft distribution;
//!   `∂L/∂ŷ_bc = (softmax(ŷ_b)_c · Σ_c' y_bc' − y_bc)/B` (`nn.CrossEntropyLoss`).
//! - `BceWithLogits`: `L = (1/(B·C)) Σ_{b,c} [max(ŷ,0) − ŷ·y + log(1 + e^{−|ŷ|})]`,
//!   `∂L/∂ŷ = (σ(ŷ) − y)/(B·C)` (`nn.BCEWithLogitsLoss`).

use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result};
use crate::model::ModelSpec;

/// A training loss, averaged over the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Mean squared error over batch and outputs.
    Mse,
    /// Softmax cross-entropy over the output logits, from class indices or soft targets.
    CrossEntropy,
    /// Binary cross-entropy on logits, elementwise, averaged over batch and outputs.
    BceWithLogits,
}

impl Loss {
    /// The name used on the command line and in checkpoints.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::CrossEntropy => "cross-entropy",
            Loss::BceWithLogits => "bce-logits",
        }
    }

    /// The divisor of the summed loss: `B·C` for `Mse` and `BceWithLogits`, `B` for `CrossEntropy`.
    pub fn normalizer(self, rows: usize, outputs: usize) -> f32 {
        match self {
            Loss::CrossEntropy => rows as f32,
            Loss::Mse | Loss::BceWithLogits => (rows * outputs) as f32,
        }
    }

    /// Checks that `targets` suit this loss and a model with `outputs` outputs over `rows` rows.
    pub fn check_targets(
        self,
        targets: &TargetsView<'_>,
        rows: usize,
        outputs: usize,
    ) -> Result<()> {
        match targets {
            TargetsView::Classes(classes) => {
                if self != Loss::CrossEntropy {
                    return Err(Error::Targets(format!(
                        "{} needs float targets of width {outputs}, not class indices",
                        self.name()
                    )));
                }
                if classes.len() != rows {
                    return Err(Error::Targets(format!(
                        "{} class indices for {rows} feature rows",
                        classes.len()
                    )));
                }
                if let Some((row, &class)) = classes
                    .iter()
                    .enumerate()
                    .find(|&(_, &c)| c as usize >= outputs)
                {
                    return Err(Error::Targets(format!(
                        "class index {class} at row {row} is out of range for {outputs} outputs \
                         (valid: 0..={})",
                        outputs - 1
                    )));
                }
            }
            TargetsView::Dense(values) => {
                if values.dim() != (rows, outputs) {
                    return Err(Error::Targets(format!(
                        "targets have shape {:?} but the batch needs [{rows}, {outputs}] \
                         (one row per sample, one column per output)",
                        values.shape()
                    )));
                }
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for Loss {
    type Err = Error;

    /// Parses `mse`, `cross-entropy` and `bce-logits` (underscores accepted for dashes).
    fn from_str(text: &str) -> Result<Self> {
        match text.trim().replace('_', "-").as_str() {
            "mse" => Ok(Loss::Mse),
            "cross-entropy" | "ce" => Ok(Loss::CrossEntropy),
            "bce-logits" | "bce-with-logits" => Ok(Loss::BceWithLogits),
            _ => Err(Error::InvalidModel(format!(
                "unknown loss `{text}`; expected mse, cross-entropy or bce-logits"
            ))),
        }
    }
}

/// Training targets, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// One float row per sample, as wide as the output layer.
    Dense(Array2<f32>),
    /// One class index per sample (cross-entropy only).
    Classes(Vec<u32>),
}

impl Targets {
    /// Rows (samples).
    pub fn rows(&self) -> usize {
        match self {
            Targets::Dense(values) => values.nrows(),
            Targets::Classes(classes) => classes.len(),
        }
    }

    /// A borrowed view.
    pub fn view(&self) -> TargetsView<'_> {
        match self {
            Targets::Dense(values) => TargetsView::Dense(values.view()),
            Targets::Classes(classes) => TargetsView::Classes(classes),
        }
    }
}

/// Training targets, borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TargetsView<'a> {
    /// `[rows, outputs]` float targets.
    Dense(ArrayView2<'a, f32>),
    /// One class index per row.
    Classes(&'a [u32]),
}

/// One mini-batch: features `[rows, inputs]` and their targets.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// `[rows, inputs]`.
    pub features: ArrayView2<'a, f32>,
    /// Targets for the same rows.
    pub targets: TargetsView<'a>,
}

impl<'a> Batch<'a> {
    /// A batch from features and targets.
    pub fn new(features: ArrayView2<'a, f32>, targets: TargetsView<'a>) -> Self {
        Self { features, targets }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.features.nrows()
    }

    /// Checks the batch against the model's input and output widths and the loss.
    pub fn check(&self, model: &ModelSpec, loss: Loss) -> Result<()> {
        if self.rows() == 0 {
            return Err(Error::EmptyBatch);
        }
        model.check_features(&self.features)?;
        loss.check_targets(&self.targets, self.rows(), model.outputs())
    }
}
