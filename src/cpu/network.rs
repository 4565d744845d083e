//! Forward and backward passes of a model, layer by layer, each kind of layer's math in its own
//! file ([`super::dense`], [`super::layer_norm`]), written for clarity with ndarray.
//!
//! Every kind of layer answers the same two calls: `forward(input) → (z, a = act(z))` and
//! `backward(input, δ = ∂L/∂z) → (its tensors' gradients, ∂L/∂input)`; this file walks them and
//! applies each layer's activation derivative between them.

use ndarray::{Array2, ArrayView2};

use super::layer::{LayerGradients, LayerOutputs, Saved};
use super::{batch_norm, dense, dropout, elementwise, layer_norm};
use crate::model::{Activation, Layer, MaskKey, ModelSpec, NamedTensor, Parameters};

/// What the forward pass keeps for the backward pass.
#[derive(Debug, Clone)]
pub struct Activations {
    /// Pre-activations `z_i`, one per layer (`a_{i−1}·W_iᵀ + b_i` for a dense layer).
    pub pre: Vec<Array2<f32>>,
    /// Activations `a_i = act_i(z_i)`, one per layer; the last is the model output.
    pub post: Vec<Array2<f32>>,
    /// What else each layer's backward pass reads (a training pass's dropout multipliers and
    /// batch statistics).
    pub saved: Vec<Option<Saved>>,
}

/// `z_i`, `a_i = act_i(z_i)` for every layer, from `a_{−1} = x`, in evaluation mode (dropout
/// passes its input through).
pub fn forward(spec: &ModelSpec, params: &Parameters, x: ArrayView2<'_, f32>) -> Activations {
    run_forward(spec, params, x, None)
}

/// The same in training mode: dropout draws its masks from `key`.
pub fn forward_training(
    spec: &ModelSpec,
    params: &Parameters,
    x: ArrayView2<'_, f32>,
    key: &MaskKey<'_>,
) -> Activations {
    run_forward(spec, params, x, Some(key))
}

/// The forward pass, training when `key` is given.
fn run_forward(
    spec: &ModelSpec,
    params: &Parameters,
    x: ArrayView2<'_, f32>,
    key: Option<&MaskKey<'_>>,
) -> Activations {
    let count = spec.layers().len();
    let (mut pre, mut saved) = (Vec::with_capacity(count), Vec::with_capacity(count));
    let mut post: Vec<Array2<f32>> = Vec::with_capacity(count);
    let layers = spec.layers().iter().zip(params.by_layer(spec));
    for ((layer, own), block) in layers.zip(spec.blocks()) {
        let input = post.last().map_or(x, |a| a.view());
        let out = layer_forward(layer, own, input, block as u32, key);
        pre.push(out.pre);
        post.push(out.post);
        saved.push(out.saved);
    }
    Activations { pre, post, saved }
}

/// Backpropagation from `∂L/∂a_last`, last layer first:
///
/// ```text
/// δ_last = ∂L/∂a_last ⊙ act'(z_last)
/// (∂L/∂θ_i, ∂L/∂a_{i−1}) = backward_i(a_{i−1}, δ_i)
/// δ_{i−1} = ∂L/∂a_{i−1} ⊙ act'_{i−1}(z_{i−1})
/// ```
pub fn backward(
    spec: &ModelSpec,
    params: &Parameters,
    x: ArrayView2<'_, f32>,
    acts: &Activations,
    output_grad: Array2<f32>,
) -> Parameters {
    let mut grads = Vec::with_capacity(spec.layers().len());
    backward_each(spec, params, x, acts, output_grad, |_, layer_grads| {
        grads.push(layer_grads);
    });
    Parameters::from_values(spec, grads.into_iter().rev().flatten())
}

/// [`backward`], giving each layer's gradients `∂L/∂θ_i` (one vector per tensor of the layer,
/// in its order) to `each(i, ·)` as soon as they are computed, last layer first.
pub fn backward_each(
    spec: &ModelSpec,
    params: &Parameters,
    x: ArrayView2<'_, f32>,
    acts: &Activations,
    output_grad: Array2<f32>,
    mut each: impl FnMut(usize, Vec<Vec<f32>>),
) {
    let layers = spec.layers();
    let own = params.by_layer(spec);
    let last = layers.len() - 1;
    let mut delta = activation_gradient(output_grad, &acts.pre[last], layers[last].activation());
    for i in (0..layers.len()).rev() {
        let input = if i == 0 { x } else { acts.post[i - 1].view() };
        let (layer_grads, upstream) = layer_backward(
            &layers[i],
            own[i],
            (input, acts.saved[i].as_ref()),
            delta.view(),
            i > 0,
        );
        each(i, layer_grads);
        if let Some(upstream) = upstream {
            delta = activation_gradient(upstream, &acts.pre[i - 1], layers[i - 1].activation());
        }
    }
}

/// Layer `layer` (of block `block`)'s forward pass over `input`, with its own tensors `own`,
/// training when `key` is given.
fn layer_forward(
    layer: &Layer,
    own: &[NamedTensor],
    input: ArrayView2<'_, f32>,
    block: u32,
    key: Option<&MaskKey<'_>>,
) -> LayerOutputs {
    match layer {
        Layer::Dense(d) => dense::forward(d, own, input),
        Layer::LayerNorm(n) => layer_norm::forward(n, own, input),
        Layer::Dropout(d) => dropout::forward(d, block, input, key),
        Layer::BatchNorm(n) => batch_norm::forward(n, own, input, key.is_some()),
    }
}

/// Layer `layer`'s backward pass from `δ = ∂L/∂z`, given its input and what its forward pass
/// saved; `∂L/∂input` only when `input_gradient`.
fn layer_backward(
    layer: &Layer,
    own: &[NamedTensor],
    (input, saved): (ArrayView2<'_, f32>, Option<&Saved>),
    delta: ArrayView2<'_, f32>,
    input_gradient: bool,
) -> LayerGradients {
    match layer {
        Layer::Dense(_) => dense::backward(own, input, delta, input_gradient),
        Layer::LayerNorm(n) => layer_norm::backward(n, own, input, delta),
        Layer::Dropout(_) => match saved {
            Some(Saved::Multipliers(multipliers)) => dropout::backward(delta, multipliers),
            // A pass that did not train has no mask: the input passed through.
            _ => (Vec::new(), Some(delta.to_owned())),
        },
        Layer::BatchNorm(n) => batch_norm::backward(n, own, input, delta, saved),
    }
}

/// `g ⊙ act'(z)`, elementwise: `∂L/∂z` from `∂L/∂act(z)`.
pub fn activation_gradient(
    mut g: Array2<f32>,
    z: &Array2<f32>,
    activation: Activation,
) -> Array2<f32> {
    elementwise::chain_through_activation(&mut g, z, activation);
    g
}

/// Moves each batch norm's running statistics in `params` towards the batch statistics a
/// training pass over `rows` rows saved in `acts` ([`crate::model::BatchNorm`]).
pub fn update_running_statistics(
    spec: &ModelSpec,
    params: &mut Parameters,
    acts: &Activations,
    rows: usize,
) {
    for ((layer, block), saved) in spec.layers().iter().zip(spec.blocks()).zip(&acts.saved) {
        if let (Layer::BatchNorm(n), Some(Saved::BatchStatistics { mean, var })) = (layer, saved) {
            batch_norm::update_running(n, block, params, (mean, var), rows);
        }
    }
}
