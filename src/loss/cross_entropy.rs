//! `cross-entropy`: softmax cross-entropy over the output logits (`nn.CrossEntropyLoss`), from
//! class indices or soft targets: `L = (1/B) Σ_b [lse(ŷ_b) − Σ_c y_bc ŷ_bc]` where `lse` is the
//! log-sum-exp over classes and `y_b` is one-hot (class indices) or any soft distribution;
//! `∂L/∂ŷ_bc = (softmax(ŷ_b)_c · Σ_c' y_bc' − y_bc)/B`.

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut1};

use super::row::RowTarget;

/// Its name on the command line and in checkpoints.
pub(super) const NAME: &str = "cross-entropy";

/// Other names it is known by.
pub(super) const ALIASES: &[&str] = &["ce"];

/// It classifies (the class is the first largest output): accuracy, class predictions and
/// probabilities apply.
pub(super) const CLASSIFIES: bool = true;

/// Whether its targets may be class indices (one per row) instead of a row of values.
pub(super) const CLASS_INDICES: bool = true;

/// Its WGSL: `cross_entropy_row(b, base)` and `cross_entropy_correct(b, base)`, the same
/// arithmetic as below.
pub(super) const WGSL: &str = include_str!("cross_entropy.wgsl");

/// The divisor of the summed loss: `B`.
pub(super) fn normalizer(rows: usize, _outputs: usize) -> f32 {
    rows as f32
}

/// One row's loss `lse(z) − Σ_c y_c z_c` (max-shifted), writing
/// `(softmax(z)_c · Σ y − y_c) / grad_norm` into `grad`.
pub(super) fn row(
    z: ArrayView1<'_, f32>,
    y: RowTarget<'_>,
    mut grad: ArrayViewMut1<'_, f32>,
    grad_norm: f32,
) -> f32 {
    let (shifted, sum) = softmax_parts(z);
    match y {
        RowTarget::Class(class) => {
            for (c, g) in grad.iter_mut().enumerate() {
                let onehot = if c == class { 1.0 } else { 0.0 };
                *g = ((shifted[c].exp() / sum) - onehot) / grad_norm;
            }
            sum.ln() - shifted[class]
        }
        RowTarget::Dense(y) => {
            let mass: f32 = y.sum();
            let log_sum = sum.ln();
            for (c, g) in grad.iter_mut().enumerate() {
                *g = ((shifted[c].exp() / sum) * mass - y[c]) / grad_norm;
            }
            // −Σ_c y_c·log_softmax_c with log_softmax_c = (z_c − max) − ln Σ e^{z − max}.
            y.iter()
                .zip(&shifted)
                .map(|(&y, &s)| y * (log_sum - s))
                .sum()
        }
    }
}

/// `z − max z` and `Σ e^{z − max z}`, the stable pieces of softmax and log-sum-exp.
fn softmax_parts(z: ArrayView1<'_, f32>) -> (Vec<f32>, f32) {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let shifted: Vec<f32> = z.iter().map(|&v| v - max).collect();
    let sum = shifted.iter().map(|s| s.exp()).sum();
    (shifted, sum)
}

/// The first largest output of each row.
pub(super) fn classes(outputs: ArrayView2<'_, f32>) -> Option<Vec<u32>> {
    Some(
        outputs
            .rows()
            .into_iter()
            .map(|row| {
                (1..row.len()).fold(0, |best, c| if row[c] > row[best] { c } else { best }) as u32
            })
            .collect(),
    )
}

/// The softmax of each row (computed in f64, max-shifted).
pub(super) fn probabilities(mut outputs: Array2<f32>) -> Option<Array2<f32>> {
    for mut row in outputs.rows_mut() {
        let top = row.fold(f32::NEG_INFINITY, |m, &z| m.max(z));
        let exp = row.mapv(|z| f64::from(z - top).exp());
        let sum = exp.sum();
        row.zip_mut_with(&exp, |p, &e| *p = (e / sum) as f32);
    }
    Some(outputs)
}

/// Right when the first largest output is the class (the first largest of soft targets).
pub(super) fn correct(z: ArrayView1<'_, f32>, y: RowTarget<'_>) -> bool {
    let first_argmax = |len: usize, value: &dyn Fn(usize) -> f32| {
        (1..len).fold(0, |best, c| if value(c) > value(best) { c } else { best })
    };
    first_argmax(z.len(), &|c| z[c]) == first_argmax(z.len(), &|c| y.at(c))
}
