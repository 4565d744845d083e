//! `mse`: the mean squared error over batch and outputs (`nn.MSELoss`),
//! `L = (1/(B·C)) Σ_{b,c} (ŷ_bc − y_bc)²`, `∂L/∂ŷ = 2(ŷ − y)/(B·C)`.

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut1};

use super::row::RowTarget;

/// Its name on the command line and in checkpoints.
pub(super) const NAME: &str = "mse";

/// Other names it is known by.
pub(super) const ALIASES: &[&str] = &[];

/// It does not classify: a regression loss has no accuracy, class predictions or probabilities.
pub(super) const CLASSIFIES: bool = false;

/// Whether its targets may be class indices (one per row) instead of a row of values.
pub(super) const CLASS_INDICES: bool = false;

/// Its WGSL: `mse_row(b, base)` and `mse_correct(b, base)`, the same arithmetic as below.
pub(super) const WGSL: &str = include_str!("mse.wgsl");

/// The divisor of the summed loss: `B·C`.
pub(super) fn normalizer(rows: usize, outputs: usize) -> f32 {
    (rows * outputs) as f32
}

/// One row's summed loss `Σ_c (ŷ_c − y_c)²`, writing `2(ŷ_c − y_c) / grad_norm` into `grad`.
pub(super) fn row(
    z: ArrayView1<'_, f32>,
    y: RowTarget<'_>,
    mut grad: ArrayViewMut1<'_, f32>,
    grad_norm: f32,
) -> f32 {
    let mut total = 0.0;
    for (c, g) in grad.iter_mut().enumerate() {
        let d = z[c] - y.at(c);
        *g = 2.0 * d / grad_norm;
        total += d * d;
    }
    total
}

/// Regression predicts no classes.
pub(super) fn classes(_outputs: ArrayView2<'_, f32>) -> Option<Vec<u32>> {
    None
}

/// Regression outputs are no probabilities.
pub(super) fn probabilities(_outputs: Array2<f32>) -> Option<Array2<f32>> {
    None
}

/// Regression has no right or wrong rows.
pub(super) fn correct(_z: ArrayView1<'_, f32>, _y: RowTarget<'_>) -> bool {
    false
}
