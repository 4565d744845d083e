//! Forward and backward passes of a model, layer by layer (each layer's math in its own file:
//! [`super::dense`]), written for clarity with ndarray.

use ndarray::{Array2, ArrayView2};

use super::dense::{self, activation_gradient};
use crate::model::{ModelSpec, Parameters};

/// What the forward pass keeps for the backward pass.
#[derive(Debug, Clone)]
pub struct Activations {
    /// Pre-activations `z_i = a_{i−1}·W_iᵀ + b_i`, one per layer.
    pub pre: Vec<Array2<f32>>,
    /// Activations `a_i = act_i(z_i)`, one per layer; the last is the model output.
    pub post: Vec<Array2<f32>>,
}

/// `z_i = a_{i−1}·W_iᵀ + b_i`, `a_i = act_i(z_i)` for every layer, from `a_{−1} = x`.
pub fn forward(spec: &ModelSpec, params: &Parameters, x: ArrayView2<'_, f32>) -> Activations {
    let mut pre = Vec::with_capacity(spec.layers().len());
    let mut post: Vec<Array2<f32>> = Vec::with_capacity(spec.layers().len());
    for (layer, p) in spec.layers().iter().zip(&params.layers) {
        let input = post.last().map_or(x, |a| a.view());
        let out = dense::forward(layer, p, input);
        pre.push(out.pre);
        post.push(out.post);
    }
    Activations { pre, post }
}

/// Backpropagation from `∂L/∂a_last`, last layer first:
///
/// ```text
/// δ_last = ∂L/∂a_last ⊙ act'(z_last)
/// ∂L/∂W_i = δ_iᵀ · a_{i−1}        ∂L/∂b_i = Σ_rows δ_i
/// δ_{i−1} = (δ_i · W_i) ⊙ act'_{i−1}(z_{i−1})
/// ```
pub fn backward(
    spec: &ModelSpec,
    params: &Parameters,
    x: ArrayView2<'_, f32>,
    acts: &Activations,
    output_grad: Array2<f32>,
) -> Parameters {
    let layers = spec.layers();
    let last = layers.len() - 1;
    let mut delta = activation_gradient(output_grad, &acts.pre[last], layers[last].activation);
    let mut grads = Vec::with_capacity(layers.len());
    for i in (0..layers.len()).rev() {
        let input = if i == 0 { x } else { acts.post[i - 1].view() };
        let (layer_grads, upstream) =
            dense::backward(&params.layers[i], input, delta.view(), i > 0);
        grads.push(layer_grads);
        if let Some(upstream) = upstream {
            delta = activation_gradient(upstream, &acts.pre[i - 1], layers[i - 1].activation);
        }
    }
    grads.reverse();
    Parameters { layers: grads }
}
