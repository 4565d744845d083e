//! The kinds of layer a model is built from, and what every kind answers: its widths, its
//! output activation, the tensors it owns and the values a training step keeps for it.
//!
//! A layer kind is described here (one variant, its own file beside this one), computed by
//! each engine (`cpu/` and `gpu/engine/layers/`), and named in the checkpoint's `architecture`
//! metadata by its own `describe` / `read`.

use serde_json::Value;

use super::batch_norm::BatchNorm;
use super::dense::Dense;
use super::dropout::Dropout;
use super::layer_norm::LayerNorm;
use super::tensor::TensorSpec;
use crate::activation::Activation;

/// One layer of a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Layer {
    /// `Linear(inputs, outputs)` followed by an activation.
    Dense(Dense),
    /// `LayerNorm(width)` followed by an activation.
    LayerNorm(LayerNorm),
    /// Inverted dropout (training only).
    Dropout(Dropout),
    /// `BatchNorm1d(width)` followed by an activation.
    BatchNorm(BatchNorm),
}

impl Layer {
    /// A dense layer, `a = act(x · Wᵀ + b)`.
    pub fn dense(inputs: usize, outputs: usize, activation: Activation) -> Self {
        Layer::Dense(Dense {
            inputs,
            outputs,
            activation,
        })
    }

    /// Input width.
    pub fn inputs(&self) -> usize {
        match self {
            Layer::Dense(d) => d.inputs,
            Layer::LayerNorm(n) => n.width,
            Layer::Dropout(d) => d.width,
            Layer::BatchNorm(n) => n.width,
        }
    }

    /// Output width.
    pub fn outputs(&self) -> usize {
        match self {
            Layer::Dense(d) => d.outputs,
            Layer::LayerNorm(n) => n.width,
            Layer::Dropout(d) => d.width,
            Layer::BatchNorm(n) => n.width,
        }
    }

    /// The activation `act` of its output `a = act(z)`; the layer after it multiplies the
    /// gradient it passes back by `act'(z)`.
    pub fn activation(&self) -> Activation {
        match self {
            Layer::Dense(d) => d.activation,
            Layer::LayerNorm(n) => n.activation,
            Layer::Dropout(_) => Activation::Identity,
            Layer::BatchNorm(n) => n.activation,
        }
    }

    /// Whether it opens a new block of PyTorch names (`layers.{i}`, and `norms.{i}` for the
    /// layers after it in the block).
    pub fn opens_block(&self) -> bool {
        match self {
            Layer::Dense(_) => true,
            Layer::LayerNorm(_) | Layer::Dropout(_) | Layer::BatchNorm(_) => false,
        }
    }

    /// The tensors it owns, named for `block`, in the order the engines and checkpoints keep
    /// them.
    pub fn tensors(&self, block: usize) -> Vec<TensorSpec> {
        match self {
            Layer::Dense(d) => d.tensors(block),
            Layer::LayerNorm(n) => n.tensors(block),
            Layer::Dropout(d) => d.tensors(),
            Layer::BatchNorm(n) => n.tensors(block),
        }
    }

    /// The values a training step keeps per batch row for this layer, on either engine: its
    /// pre-activations `z`, activations `act(z)` and their gradients `δ`, `3·outputs`, and a
    /// layer norm's `δ ⊙ x̂` besides, `4·width`
    /// (saturating).
    pub fn values_per_row(&self) -> u64 {
        let per_output = match self {
            Layer::Dense(_) | Layer::Dropout(_) | Layer::BatchNorm(_) => 3,
            Layer::LayerNorm(_) => 4,
        };
        (self.outputs() as u64).saturating_mul(per_output)
    }

    /// How many tensors it owns (`tensors(_).len()`, without naming them).
    pub fn tensor_count(&self) -> usize {
        match self {
            Layer::Dense(_) => Dense::TENSORS,
            Layer::LayerNorm(_) => LayerNorm::TENSORS,
            Layer::Dropout(_) => 0,
            Layer::BatchNorm(_) => BatchNorm::TENSORS,
        }
    }

    /// Its entry in a checkpoint's `architecture` metadata.
    pub fn describe(&self) -> Value {
        match self {
            Layer::Dense(d) => d.describe(),
            Layer::LayerNorm(n) => n.describe(),
            Layer::Dropout(d) => d.describe(),
            Layer::BatchNorm(n) => n.describe(),
        }
    }

    /// The layer an `architecture` entry describes; `None` when no kind reads it.
    pub fn read(entry: &Value) -> crate::error::Result<Option<Self>> {
        if let Some(dropout) = Dropout::read(entry) {
            return Ok(Some(Layer::Dropout(dropout)));
        }
        if let Some(norm) = BatchNorm::read(entry)? {
            return Ok(Some(Layer::BatchNorm(norm)));
        }
        if let Some(norm) = LayerNorm::read(entry)? {
            return Ok(Some(Layer::LayerNorm(norm)));
        }
        Ok(Dense::read(entry)?.map(Layer::Dense))
    }
}
