//! The layers of a GPU engine, one kind per file (`dense.rs`,
//! `layer_norm.rs`, `batch_norm.rs`, `dropout.rs`), each answering the same calls:
//! the shape uniforms its dispatches take, its products as the tuner sees them, and the
//! recording of its forward and backward dispatches over the engine's buffers.
//!
//! The contract between neighbouring layers, whatever their kind: layer `i` writes its
//! pre-activation `z_i` and output `a_i = act_i(z_i)` into its buffers, and its backward pass
//! reads `δ_i = ∂L/∂z_i` and writes `δ_{i−1} = ∂L/∂a_{i−1} ⊙ act'_{i−1}(z_{i−1})` for the layer
//! before it (the loss writes `δ` of the last layer).

mod batch_norm;
mod dense;
mod dropout;
mod layer_norm;

use self::batch_norm::BatchNormLayer;
use self::dense::DenseLayer;
use self::dropout::DropoutLayer;
use self::layer_norm::LayerNormLayer;
use super::recorder::{LayerBackward, Recorder};
use crate::error::Result;
use crate::gpu::buffers::FlatLayout;
use crate::gpu::context::GpuContext;
use crate::gpu::ops::dispatch::Dispatch;
use crate::gpu::ops::matmul::tuning::Product;
use crate::model::{Activation, Layer, ModelSpec};

/// One layer of a GPU engine.
pub(super) enum GpuLayer {
    /// `Linear` followed by an activation.
    Dense(DenseLayer),
    /// Layer normalisation followed by an activation.
    LayerNorm(LayerNormLayer),
    /// Inverted dropout.
    Dropout(DropoutLayer),
    /// Batch normalisation followed by an activation.
    BatchNorm(BatchNormLayer),
}

impl GpuLayer {
    /// The layers of `model`, its parameters laid out as `layout` and its running statistics
    /// as `stats`, for `models` models and batches of `max_batch` rows. Fails naming the tensor
    /// when one does not fit the device's bindings.
    pub fn all(
        ctx: &GpuContext,
        model: &ModelSpec,
        (layout, stats): (&FlatLayout, &FlatLayout),
        models: usize,
        max_batch: usize,
    ) -> Result<Vec<Self>> {
        let layers = model.layers();
        let mut out = Vec::with_capacity(layers.len());
        for ((i, &layer), block) in layers.iter().enumerate().zip(model.blocks()) {
            let previous = i.checked_sub(1).map(|p| layers[p]);
            let previous_activation = previous.map_or(Activation::Identity, |p| p.activation());
            out.push(match layer {
                Layer::Dense(dense) => GpuLayer::Dense(DenseLayer::new(
                    ctx,
                    dense,
                    block,
                    previous,
                    layout,
                    (models, max_batch),
                )?),
                Layer::LayerNorm(norm) => GpuLayer::LayerNorm(LayerNormLayer::new(
                    ctx,
                    norm,
                    block,
                    previous_activation,
                    layout,
                    (models, max_batch),
                )?),
                Layer::BatchNorm(norm) => GpuLayer::BatchNorm(BatchNormLayer::new(
                    ctx,
                    norm,
                    (block, previous_activation),
                    (layout, stats),
                    (models, max_batch),
                )?),
                Layer::Dropout(dropout) => GpuLayer::Dropout(DropoutLayer::new(
                    dropout,
                    block,
                    previous_activation,
                    max_batch,
                )),
            });
        }
        Ok(out)
    }

    /// Shape uniforms its dispatches take.
    pub fn uniform_slots(&self) -> usize {
        match self {
            GpuLayer::Dense(d) => d.uniform_slots(),
            GpuLayer::LayerNorm(n) => n.uniform_slots(),
            GpuLayer::Dropout(d) => d.uniform_slots(),
            GpuLayer::BatchNorm(n) => n.uniform_slots(),
        }
    }

    /// Its forward products as the tuner sees them.
    pub fn forward_products(&self) -> Vec<Product> {
        match self {
            GpuLayer::Dense(d) => d.forward_products(),
            GpuLayer::LayerNorm(_) | GpuLayer::Dropout(_) | GpuLayer::BatchNorm(_) => Vec::new(),
        }
    }

    /// Its backward products as the tuner sees them.
    pub fn backward_products(&self) -> Vec<Product> {
        match self {
            GpuLayer::Dense(d) => d.backward_products(),
            GpuLayer::LayerNorm(_) | GpuLayer::Dropout(_) | GpuLayer::BatchNorm(_) => Vec::new(),
        }
    }

    /// Records layer `i`'s forward pass, `z_i` and `a_i = act_i(z_i)` from `a_{−1}`: as a
    /// training step runs it, and as an evaluation does (the same dispatches but for dropout).
    pub fn record_forward(
        &self,
        rec: &mut Recorder<'_>,
        i: usize,
    ) -> Result<(Vec<Dispatch>, Vec<Dispatch>)> {
        let same = |dispatches: Vec<Dispatch>| (dispatches.clone(), dispatches);
        match self {
            GpuLayer::Dense(d) => d.record_forward(rec, i).map(same),
            GpuLayer::LayerNorm(n) => n.record_forward(rec, i).map(same),
            GpuLayer::Dropout(d) => d.record_forward(rec, i),
            GpuLayer::BatchNorm(n) => n.record_forward(rec, i),
        }
    }

    /// Records layer `i`'s backward pass from `δ_i`: its tensors' gradients (written, or added
    /// to the gradients) and, but for the first layer, `δ_{i−1}`.
    pub fn record_backward(&self, rec: &mut Recorder<'_>, i: usize) -> Result<LayerBackward> {
        match self {
            GpuLayer::Dense(d) => d.record_backward(rec, i),
            GpuLayer::LayerNorm(n) => n.record_backward(rec, i),
            GpuLayer::Dropout(d) => d.record_backward(rec, i),
            GpuLayer::BatchNorm(n) => n.record_backward(rec, i),
        }
    }
}
