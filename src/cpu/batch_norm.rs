//! Batch normalisation on the CPU, forward (training or evaluation), backward and the running
//! statistics' update ([`crate::model::BatchNorm`] has the equations); column sums taken over
//! the rows in increasing order.

use ndarray::{Array1, ArrayView1, ArrayView2, Axis, Zip};

use super::elementwise::activate;
use super::layer::{LayerGradients, LayerOutputs, Saved};
use crate::model::{BatchNorm, NamedTensor, Parameters};

/// The layer's scale γ, shift β, running mean and running variance among its own tensors.
fn own_tensors(own: &[NamedTensor]) -> [ArrayView1<'_, f32>; 4] {
    let [weight, bias, mean, var] = own else {
        unreachable!("a batch norm owns a scale, a shift and two running statistics")
    };
    [weight, bias, mean, var].map(|t| ArrayView1::from(t.values.as_slice()))
}

/// Each column's mean and biased variance, summed over the rows in order.
fn batch_statistics(input: ArrayView2<'_, f32>) -> (Array1<f32>, Array1<f32>) {
    let n = input.nrows() as f32;
    let mean = input.sum_axis(Axis(0)) / n;
    let mut var = Array1::<f32>::zeros(input.ncols());
    for row in input.rows() {
        Zip::from(&mut var)
            .and(&row)
            .and(&mean)
            .for_each(|v, &x, &m| *v += (x - m) * (x - m));
    }
    (mean, var / n)
}

/// `y = γ ⊙ (x − μ)/√(σ² + ε) + β`, `act(y)`: with the batch's statistics (saved for the
/// backward pass) when `training`, else with the running ones.
pub fn forward(
    norm: &BatchNorm,
    own: &[NamedTensor],
    input: ArrayView2<'_, f32>,
    training: bool,
) -> LayerOutputs {
    let [gamma, beta, running_mean, running_var] = own_tensors(own);
    let (mean, var) = if training {
        batch_statistics(input)
    } else {
        (running_mean.to_owned(), running_var.to_owned())
    };
    let rstd = var.mapv(|v| 1.0 / (v + norm.eps).sqrt());
    let mut y = input.to_owned();
    for mut row in y.rows_mut() {
        Zip::from(&mut row)
            .and(&mean)
            .and(&rstd)
            .and(&gamma)
            .and(&beta)
            .for_each(|y, &m, &r, &g, &b| *y = g * ((*y - m) * r) + b);
    }
    let post = activate(&mut y, norm.activation);
    LayerOutputs {
        pre: y,
        post,
        saved: training.then_some(Saved::BatchStatistics { mean, var }),
    }
}

/// From `δ = ∂L/∂y`: `∂L/∂γ = Σ_r δ ⊙ x̂`, `∂L/∂β = Σ_r δ` (the running statistics get none),
/// and with the batch's statistics
///
/// ```text
/// ∂L/∂x_rc = γ_c / (N √(σ²_c + ε)) · (N δ_rc − Σ_r δ_rc − x̂_rc Σ_r δ_rc x̂_rc)
/// ```
///
/// (with the running ones, which do not depend on the batch, `∂L/∂x = γ δ / √(var + ε)`).
pub fn backward(
    norm: &BatchNorm,
    own: &[NamedTensor],
    input: ArrayView2<'_, f32>,
    delta: ArrayView2<'_, f32>,
    saved: Option<&Saved>,
) -> LayerGradients {
    let [gamma, _, running_mean, running_var] = own_tensors(own);
    let (mean, var, training) = match saved {
        Some(Saved::BatchStatistics { mean, var }) => (mean.clone(), var.clone(), true),
        _ => (running_mean.to_owned(), running_var.to_owned(), false),
    };
    let rstd = var.mapv(|v| 1.0 / (v + norm.eps).sqrt());
    let mut xhat = input.to_owned();
    for mut row in xhat.rows_mut() {
        Zip::from(&mut row)
            .and(&mean)
            .and(&rstd)
            .for_each(|x, &m, &r| *x = (*x - m) * r);
    }
    let sum_delta = delta.sum_axis(Axis(0));
    let sum_delta_xhat = (&delta * &xhat).sum_axis(Axis(0));
    let n = input.nrows() as f32;
    let mut dx = delta.to_owned();
    for (mut row, xhat) in dx.rows_mut().into_iter().zip(xhat.rows()) {
        Zip::from(&mut row)
            .and(&xhat)
            .and(&gamma)
            .and(&rstd)
            .and(&sum_delta)
            .and(&sum_delta_xhat)
            .for_each(|d, &x, &g, &r, &s, &sx| {
                *d = if training {
                    g * r / n * (n * *d - s - x * sx)
                } else {
                    g * r * *d
                };
            });
    }
    let zeros = vec![0.0; norm.width];
    (
        vec![
            sum_delta_xhat.to_vec(),
            sum_delta.to_vec(),
            zeros.clone(),
            zeros,
        ],
        Some(dx),
    )
}

/// `running ← (1 − m)·running + m·batch` for block `block`'s running mean and variance in
/// `params`, the variance unbiased (`σ² · N/(N − 1)` over `rows` rows).
pub fn update_running(
    norm: &BatchNorm,
    block: usize,
    params: &mut Parameters,
    (mean, var): (&Array1<f32>, &Array1<f32>),
    rows: usize,
) {
    let m = norm.momentum;
    let unbiased = rows as f32 / (rows as f32 - 1.0);
    let running = |what: &str| format!("norms.{block}.{what}");
    if let Some(values) = params.tensor_mut(&running("running_mean")) {
        for (r, &b) in values.iter_mut().zip(mean) {
            *r = (1.0 - m) * *r + m * b;
        }
    }
    if let Some(values) = params.tensor_mut(&running("running_var")) {
        for (r, &b) in values.iter_mut().zip(var) {
            *r = (1.0 - m) * *r + m * (b * unbiased);
        }
    }
}
