//! Layer normalisation on the CPU, forward and backward, row by row
//! ([`crate::model::LayerNorm`] has the equations). The statistics are recomputed in the
//! backward pass from the layer's input, the same arithmetic as in the forward pass.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Zip};

use super::elementwise::activate;
use super::layer::{LayerGradients, LayerOutputs};
use crate::model::{LayerNorm, NamedTensor};

/// The layer's scale γ and shift β among its own tensors.
fn scale_and_shift(own: &[NamedTensor]) -> (ArrayView1<'_, f32>, ArrayView1<'_, f32>) {
    let [weight, bias] = own else {
        unreachable!("a layer norm owns a scale and a shift")
    };
    (
        ArrayView1::from(weight.values.as_slice()),
        ArrayView1::from(bias.values.as_slice()),
    )
}

/// `x̂ = (x − μ) / √(σ² + ε)` of every row, and each row's `1 / √(σ² + ε)`: `μ` and the biased
/// variance `σ²` summed in increasing column order.
fn normalised(input: ArrayView2<'_, f32>, eps: f32) -> (Array2<f32>, Array1<f32>) {
    let n = input.ncols() as f32;
    let mut xhat = input.to_owned();
    let mut rstd = Array1::zeros(input.nrows());
    for (mut row, r) in xhat.rows_mut().into_iter().zip(rstd.iter_mut()) {
        let mean = row.iter().sum::<f32>() / n;
        let var = row.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / n;
        *r = 1.0 / (var + eps).sqrt();
        let scale = *r;
        row.mapv_inplace(|x| (x - mean) * scale);
    }
    (xhat, rstd)
}

/// `y = γ ⊙ x̂ + β`, `act(y)` for the rows of `input`.
pub fn forward(norm: &LayerNorm, own: &[NamedTensor], input: ArrayView2<'_, f32>) -> LayerOutputs {
    let (gamma, beta) = scale_and_shift(own);
    let (mut y, _) = normalised(input, norm.eps);
    y *= &gamma;
    y += &beta;
    let post = activate(&mut y, norm.activation);
    LayerOutputs {
        pre: y,
        post,
        saved: None,
    }
}

/// From `δ = ∂L/∂y`: `∂L/∂γ = Σ_rows δ ⊙ x̂`, `∂L/∂β = Σ_rows δ`, and per row, with
/// `g = δ ⊙ γ`,
///
/// ```text
/// ∂L/∂x = (g − mean(g) − x̂ · mean(g ⊙ x̂)) / √(σ² + ε)
/// ```
pub fn backward(
    norm: &LayerNorm,
    own: &[NamedTensor],
    input: ArrayView2<'_, f32>,
    delta: ArrayView2<'_, f32>,
) -> LayerGradients {
    let (gamma, _) = scale_and_shift(own);
    let (xhat, rstd) = normalised(input, norm.eps);
    let gamma_grad = (&delta * &xhat).sum_axis(Axis(0));
    let beta_grad = delta.sum_axis(Axis(0));
    let n = input.ncols() as f32;
    let mut dx = &delta * &gamma;
    Zip::from(dx.rows_mut())
        .and(xhat.rows())
        .and(&rstd)
        .for_each(|mut g, xhat, &rstd| {
            let mean_g = g.iter().sum::<f32>() / n;
            let mean_gx = g.iter().zip(xhat).map(|(g, x)| g * x).sum::<f32>() / n;
            Zip::from(&mut g)
                .and(&xhat)
                .for_each(|g, &x| *g = (*g - mean_g - x * mean_gx) * rstd);
        });
    (vec![gamma_grad.to_vec(), beta_grad.to_vec()], Some(dx))
}
