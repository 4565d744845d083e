//! The dense layer on the CPU: `Linear(in, out)` followed by its activation, forward and
//! backward, the math of one layer of [`super::forward`] and [`super::backward`].

use ndarray::{ArrayView2, Ix2};

use super::elementwise::{add_bias_and_activate, column_sums};
use super::layer::{LayerGradients, LayerOutputs};
use super::matmul::{product, product_of_few_rows, threaded, transposed};
use crate::model::{Dense, NamedTensor};

/// The layer's weight `[out, in]` and bias `[out]` among its own tensors.
fn weight_and_bias(own: &[NamedTensor]) -> (ArrayView2<'_, f32>, &[f32]) {
    let [weight, bias] = own else {
        unreachable!("a dense layer owns a weight and a bias")
    };
    (
        weight
            .view()
            .into_dimensionality::<Ix2>()
            .expect("[out, in]"),
        &bias.values,
    )
}

/// The most rows a batch may have for the forward product to pack the batch
/// ([`product_of_few_rows`]) rather than read a transposed copy of the weight ([`transposed`]):
/// against the copy, packing the batch measured faster at 32 and 64 rows and level at 128. (A
/// product too small for gemm to thread gains nothing from it and pays for its copy.)
const FEW_ROWS: usize = 128;

/// `z = a·Wᵀ + b`, `act(z)` for the rows of `input`.
///
/// A batch of more than [`FEW_ROWS`] rows takes the product against a row-major copy of `Wᵀ`
/// ([`transposed`]), which gemm reads in place: given `W` itself (row-major `[out, in]`), gemm
/// packs it into its kernels' layout again for every block of the batch, and that costs more
/// than one copy. The bits are the same; the CPU step of a 784-512-512-10 MLP measured 1.18×
/// faster at 256 rows and 1.30× at 1024, medians of alternating rounds whose single ratios
/// ranged from 0.92× to 1.41× (BENCHMARKS.md). Fewer rows take [`product_of_few_rows`].
pub fn forward(layer: &Dense, own: &[NamedTensor], input: ArrayView2<'_, f32>) -> LayerOutputs {
    let (weight, bias) = weight_and_bias(own);
    let mut z = if input.nrows() > FEW_ROWS {
        product(input, transposed(weight).view())
    } else if threaded(input.nrows() * weight.len()) {
        product_of_few_rows(input, weight.t())
    } else {
        product(input, weight.t())
    };
    let post = add_bias_and_activate(&mut z, bias, layer.activation);
    LayerOutputs {
        pre: z,
        post,
        saved: None,
    }
}

/// From `δ = ∂L/∂z` of this layer: its gradients `∂L/∂W = δᵀ·a` and `∂L/∂b = Σ_rows δ`, and
/// `∂L/∂a = δ·W`, the gradient with respect to its input (before the previous layer's
/// activation derivative).
pub fn backward(
    own: &[NamedTensor],
    input: ArrayView2<'_, f32>,
    delta: ArrayView2<'_, f32>,
    input_gradient: bool,
) -> LayerGradients {
    let (weight, _) = weight_and_bias(own);
    let weight_grad = product(delta.t(), input);
    let bias_grad = column_sums(delta);
    let upstream = input_gradient.then(|| product(delta, weight));
    (
        vec![weight_grad.into_raw_vec_and_offset().0, bias_grad],
        upstream,
    )
}
