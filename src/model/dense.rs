//! The dense layer as the model describes it: `Linear(inputs, outputs)` followed by an
//! activation, `a = act(x · Wᵀ + b)`, with PyTorch `nn.Linear`'s tensors and initialisation.

use serde_json::{Value, json};

use super::tensor::{Init, TensorSpec};
use crate::activation::Activation;

/// `Linear(inputs, outputs)` followed by `activation`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dense {
    /// Input width (`in_features`).
    pub inputs: usize,
    /// Output width (`out_features`).
    pub outputs: usize,
    /// Activation applied to the layer's output.
    pub activation: Activation,
}

impl Dense {
    /// How many tensors it owns: its weight and its bias.
    pub const TENSORS: usize = 2;

    /// `layers.{block}.weight` `[out, in]` and `layers.{block}.bias` `[out]`, both drawn from
    /// `U(−1/√in, 1/√in)` (what `nn.Linear`'s `kaiming_uniform_(a=√5)` reduces to), weight
    /// first.
    pub fn tensors(&self, block: usize) -> Vec<TensorSpec> {
        let init = Init::Uniform(1.0 / (self.inputs as f32).sqrt());
        vec![
            TensorSpec {
                name: weight_name(block),
                shape: vec![self.outputs, self.inputs],
                init,
                trained: true,
            },
            TensorSpec {
                name: bias_name(block),
                shape: vec![self.outputs],
                init,
                trained: true,
            },
        ]
    }

    /// Its entry in a checkpoint's `architecture` metadata: `{"in", "out", "activation"}`.
    pub fn describe(&self) -> Value {
        json!({"in": self.inputs, "out": self.outputs, "activation": self.activation.name()})
    }

    /// The layer an `architecture` entry describes; `None` when the entry has no widths, an
    /// error when its activation is not one downhill knows.
    pub fn read(entry: &Value) -> crate::error::Result<Option<Self>> {
        let width = |k: &str| entry.get(k).and_then(Value::as_u64).map(|v| v as usize);
        let activation: Activation = entry
            .get("activation")
            .and_then(Value::as_str)
            .unwrap_or("")
            .parse()?;
        Ok(match (width("in"), width("out")) {
            (Some(inputs), Some(outputs)) => Some(Self {
                inputs,
                outputs,
                activation,
            }),
            _ => None,
        })
    }
}

/// `layers.{i}.weight`.
pub fn weight_name(block: usize) -> String {
    format!("layers.{block}.weight")
}

/// `layers.{i}.bias`.
pub fn bias_name(block: usize) -> String {
    format!("layers.{block}.bias")
}
