//! What a loss compares the model's outputs with: targets, owned and borrowed.

use ndarray::{Array2, ArrayView2};

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
