//! The dense layer on the CPU: `Linear(in, out)` followed by its activation, forward and
//! backward, the math of one layer of [`super::forward`] and [`super::backward`].

use ndarray::{Array2, ArrayView2, Axis};

use super::matmul::product;
use crate::model::{Activation, Layer, LayerParameters};

/// What one dense layer's forward pass keeps for its backward pass, and its output.
#[derive(Debug, Clone)]
pub struct DenseOutputs {
    /// The pre-activation `z = a·Wᵀ + b`.
    pub pre: Array2<f32>,
    /// The activation `act(z)`: the layer's output.
    pub post: Array2<f32>,
}

/// `z = a·Wᵀ + b`, `act(z)` for the rows of `input`.
pub fn forward(layer: &Layer, p: &LayerParameters, input: ArrayView2<'_, f32>) -> DenseOutputs {
    let mut z = product(input, p.weight.t());
    z += &p.bias;
    let post = z.mapv(|v| layer.activation.apply(v));
    DenseOutputs { pre: z, post }
}

/// From `δ = ∂L/∂z` of this layer: its gradients `∂L/∂W = δᵀ·a` and `∂L/∂b = Σ_rows δ`, and
/// `∂L/∂a = δ·W`, the gradient with respect to its input (before the previous layer's
/// activation derivative).
pub fn backward(
    p: &LayerParameters,
    input: ArrayView2<'_, f32>,
    delta: ArrayView2<'_, f32>,
    input_gradient: bool,
) -> (LayerParameters, Option<Array2<f32>>) {
    let grads = LayerParameters {
        weight: product(delta.t(), input),
        bias: delta.sum_axis(Axis(0)),
    };
    let upstream = input_gradient.then(|| product(delta, p.weight.view()));
    (grads, upstream)
}

/// `g ⊙ act'(z)`, elementwise: `∂L/∂z` from `∂L/∂act(z)`.
pub fn activation_gradient(
    mut g: Array2<f32>,
    z: &Array2<f32>,
    activation: Activation,
) -> Array2<f32> {
    g.zip_mut_with(z, |g, &z| *g *= activation.derivative(z));
    g
}
