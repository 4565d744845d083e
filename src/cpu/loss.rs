//! Loss values and their gradients with respect to the model output (see [`crate::loss`]).

use ndarray::{Array2, ArrayView1, ArrayView2};

use crate::loss::{Loss, TargetsView};
use crate::model::sigmoid;

/// The mean loss over the batch and `∂L/∂ŷ`, for outputs `ŷ` of shape `[B, C]`.
pub fn loss_and_gradient(
    loss: Loss,
    output: ArrayView2<'_, f32>,
    targets: TargetsView<'_>,
) -> (f32, Array2<f32>) {
    loss_and_group_gradient(loss, output, targets, output.nrows())
}

/// The mean loss over the batch, and the gradient with respect to `ŷ` (`[B, C]`) of the summed
/// loss of its rows divided by the normaliser of a group of `group_rows` rows (see
/// [`crate::accumulate`]): `∂L/∂ŷ` itself when the group is the batch.
pub fn loss_and_group_gradient(
    loss: Loss,
    output: ArrayView2<'_, f32>,
    targets: TargetsView<'_>,
    group_rows: usize,
) -> (f32, Array2<f32>) {
    let (rows, cols) = output.dim();
    let norm = loss.normalizer(rows, cols);
    let grad_norm = loss.normalizer(group_rows, cols);
    let mut grad = Array2::zeros((rows, cols));
    let mut total = 0.0f32;
    for (b, z) in output.rows().into_iter().enumerate() {
        let mut g = grad.row_mut(b);
        total += match (loss, targets) {
            (Loss::CrossEntropy, TargetsView::Classes(classes)) => {
                let (shifted, sum) = softmax_parts(z);
                let class = classes[b] as usize;
                for (c, g) in g.iter_mut().enumerate() {
                    let onehot = if c == class { 1.0 } else { 0.0 };
                    *g = ((shifted[c].exp() / sum) - onehot) / grad_norm;
                }
                sum.ln() - shifted[class]
            }
            (Loss::CrossEntropy, TargetsView::Dense(y)) => {
                let (shifted, sum) = softmax_parts(z);
                let y = y.row(b);
                let mass: f32 = y.sum();
                let log_sum = sum.ln();
                for (c, g) in g.iter_mut().enumerate() {
                    *g = ((shifted[c].exp() / sum) * mass - y[c]) / grad_norm;
                }
                // −Σ_c y_c·log_softmax_c with log_softmax_c = (z_c − max) − ln Σ e^{z − max}.
                y.iter()
                    .zip(&shifted)
                    .map(|(&y, &s)| y * (log_sum - s))
                    .sum()
            }
            (Loss::Mse, TargetsView::Dense(y)) => {
                let mut row = 0.0;
                for (c, g) in g.iter_mut().enumerate() {
                    let d = z[c] - y[[b, c]];
                    *g = 2.0 * d / grad_norm;
                    row += d * d;
                }
                row
            }
            (Loss::BceWithLogits, TargetsView::Dense(y)) => {
                let mut row = 0.0;
                for (c, g) in g.iter_mut().enumerate() {
                    let (x, t) = (z[c], y[[b, c]]);
                    *g = (sigmoid(x) - t) / grad_norm;
                    row += x.max(0.0) - x * t + (-x.abs()).exp().ln_1p();
                }
                row
            }
            (Loss::Mse | Loss::BceWithLogits, TargetsView::Classes(_)) => {
                unreachable!("Batch::check refuses class indices for {}", loss.name())
            }
        };
    }
    (total / norm, grad)
}

/// `z − max z` and `Σ e^{z − max z}`, the stable pieces of softmax and log-sum-exp.
fn softmax_parts(z: ArrayView1<'_, f32>) -> (Vec<f32>, f32) {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let shifted: Vec<f32> = z.iter().map(|&v| v - max).collect();
    let sum = shifted.iter().map(|s| s.exp()).sum();
    (shifted, sum)
}

/// How many rows are classified right (see [`crate::engine::Metrics::accuracy`]).
pub fn correct_rows(loss: Loss, output: ArrayView2<'_, f32>, targets: TargetsView<'_>) -> u64 {
    let first_argmax = |row: ArrayView1<'_, f32>| {
        (1..row.len()).fold(0, |best, c| if row[c] > row[best] { c } else { best })
    };
    let target = |b: usize, c: usize| match targets {
        TargetsView::Classes(classes) => f32::from(u8::from(classes[b] as usize == c)),
        TargetsView::Dense(y) => y[[b, c]],
    };
    output
        .rows()
        .into_iter()
        .enumerate()
        .filter(|(b, row)| match loss {
            Loss::CrossEntropy => {
                let best_target = (1..row.len()).fold(0, |best, c| {
                    if target(*b, c) > target(*b, best) {
                        c
                    } else {
                        best
                    }
                });
                first_argmax(*row) == best_target
            }
            Loss::BceWithLogits => row
                .iter()
                .enumerate()
                .all(|(c, &x)| (x > 0.0) == (target(*b, c) > 0.5)),
            Loss::Mse => false,
        })
        .count() as u64
}
