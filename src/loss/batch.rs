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
    /// Each row's index in its dataset, which dropout's masks are keyed by; `None`: its
    /// position in the batch.
    pub rows_in_dataset: Option<&'a [u32]>,
}

impl<'a> Batch<'a> {
    /// A batch from features and targets.
    pub fn new(features: ArrayView2<'a, f32>, targets: TargetsView<'a>) -> Self {
        Self {
            features,
            targets,
            rows_in_dataset: None,
        }
    }

    /// The same rows, each known by its index in its dataset (`indices`, one per row).
    pub fn with_rows_in_dataset(self, indices: &'a [u32]) -> Self {
        Self {
            rows_in_dataset: Some(indices),
            ..self
        }
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
        if let Some(indices) = self.rows_in_dataset
            && indices.len() != self.rows()
        {
            return Err(Error::Usage(format!(
                "the batch has {} rows but {} dataset indices",
                self.rows(),
                indices.len()
            )));
        }
        model.check_features(&self.features)?;
        loss.check_targets(&self.targets, self.rows(), model.outputs())
    }
}
