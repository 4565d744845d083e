//! `bce-logits`: binary cross-entropy on logits, elementwise, averaged over batch and outputs
//! (`nn.BCEWithLogitsLoss`): `L = (1/(B·C)) Σ_{b,c} [max(ŷ,0) − ŷ·y + log(1 + e^{−|ŷ|})]`,
//! `∂L/∂ŷ = (σ(ŷ) − y)/(B·C)`.

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut1};

use super::row::RowTarget;
use crate::activation::sigmoid;

/// Its name on the command line and in checkpoints.
pub(super) const NAME: &str = "bce-logits";

/// Other names it is known by.
pub(super) const ALIASES: &[&str] = &["bce-with-logits"];

/// It classifies (each output a yes or no by its sign): accuracy, class predictions and
/// probabilities apply.
pub(super) const CLASSIFIES: bool = true;

/// Whether its targets may be class indices (one per row) instead of a row of values.
pub(super) const CLASS_INDICES: bool = false;

/// Its WGSL: `bce_logits_row(b, base)` and `bce_logits_correct(b, base)`, the same
/// arithmetic as below.
pub(super) const WGSL: &str = include_str!("bce_logits.wgsl");

/// The divisor of the summed loss: `B·C`.
pub(super) fn normalizer(rows: usize, outputs: usize) -> f32 {
    (rows * outputs) as f32
}

/// One row's summed loss `Σ_c [max(x,0) − x·y + log1p(e^{−|x|})]`, writing
/// `(σ(x) − y) / grad_norm` into `grad`.
pub(super) fn row(
    z: ArrayView1<'_, f32>,
    y: RowTarget<'_>,
    mut grad: ArrayViewMut1<'_, f32>,
    grad_norm: f32,
) -> f32 {
    let mut total = 0.0;
    for (c, g) in grad.iter_mut().enumerate() {
        let (x, t) = (z[c], y.at(c));
        *g = (sigmoid(x) - t) / grad_norm;
        total += x.max(0.0) - x * t + (-x.abs()).exp().ln_1p();
    }
    total
}

/// With one output, class 1 where the logit is above 0, else 0; several outputs are several
/// labels, no one class.
pub(super) fn classes(outputs: ArrayView2<'_, f32>) -> Option<Vec<u32>> {
    (outputs.ncols() == 1).then(|| {
        outputs
            .column(0)
            .iter()
            .map(|&z| u32::from(z > 0.0))
            .collect()
    })
}

/// Each output's sigmoid.
pub(super) fn probabilities(mut outputs: Array2<f32>) -> Option<Array2<f32>> {
    outputs.mapv_inplace(sigmoid);
    Some(outputs)
}

/// Right when every logit is on its target's side of 0 (a target above ½ wants a positive
/// logit).
pub(super) fn correct(z: ArrayView1<'_, f32>, y: RowTarget<'_>) -> bool {
    z.iter()
        .enumerate()
        .all(|(c, &x)| (x > 0.0) == (y.at(c) > 0.5))
}
