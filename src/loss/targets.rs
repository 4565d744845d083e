//! What a loss compares the model's outputs with: targets, owned and borrowed, and a
//! mini-batch of features with its targets.

use ndarray::{Array2, ArrayView2};

use super::Loss;
use crate::error::{Error, Result};
use crate::model::ModelSpec;

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
