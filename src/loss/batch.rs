//! A mini-batch: features and their targets, checked against a model and a loss.

use ndarray::ArrayView2;

use super::kind::Loss;
use super::targets::TargetsView;
use crate::error::{Error, Result};
use crate::model::ModelSpec;

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
