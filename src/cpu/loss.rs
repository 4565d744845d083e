//! Loss values and their gradients with respect to the model output (see [`crate::loss`]).

use ndarray::{Array2, ArrayView2};

use crate::loss::{Loss, RowTarget, TargetsView};

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
/// [`crate::accumulate`]): `∂L/∂ŷ` itself when the group is the batch. Row by row, through the
/// loss's own [`Loss::row`].
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
        total += loss.row(z, row_target(targets, b), grad.row_mut(b), grad_norm);
    }
    (total / norm, grad)
}

/// Row `b`'s target.
fn row_target<'a>(targets: TargetsView<'a>, b: usize) -> RowTarget<'a> {
    match targets {
        TargetsView::Classes(classes) => RowTarget::Class(classes[b] as usize),
        TargetsView::Dense(y) => RowTarget::Dense(y.index_axis_move(ndarray::Axis(0), b)),
    }
}

/// How many rows are classified right (see [`crate::engine::Metrics::accuracy`]).
pub fn correct_rows(loss: Loss, output: ArrayView2<'_, f32>, targets: TargetsView<'_>) -> u64 {
    output
        .rows()
        .into_iter()
        .enumerate()
        .filter(|(b, z)| loss.correct(*z, row_target(targets, *b)))
        .count() as u64
}
