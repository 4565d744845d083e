//! Batch normalisation as the model describes it: PyTorch's
//! `nn.BatchNorm1d(width, eps, momentum, affine=True, track_running_stats=True)`, followed by an
//! activation. In training each column is normalised with its batch mean and biased batch
//! variance, and the running statistics move towards the batch's (with the unbiased variance):
//!
//! ```text
//! μ_c = (1/N) Σ_r x_rc      σ²_c = (1/N) Σ_r (x_rc − μ_c)²      x̂_rc = (x_rc − μ_c) / √(σ²_c + ε)
//! y_rc = γ_c · x̂_rc + β_c    a_rc = act(y_rc)
//! running_mean ← (1 − m) · running_mean + m · μ
//! running_var  ← (1 − m) · running_var  + m · σ² · N/(N − 1)
//! ```
//!
//! In evaluation and prediction it normalises with the running statistics instead. Its tensors
//! are `norms.{i}.weight` (γ, 1) and `norms.{i}.bias` (β, 0), trained, and the buffers
//! `norms.{i}.running_mean` (0) and `norms.{i}.running_var` (1), `[width]` each; the checkpoint
//! adds `norms.{i}.num_batches_tracked` (int64, `[]`), the training passes counted.

use serde_json::{Value, json};

use super::layer_norm::read_norm;
use super::tensor::{Init, TensorSpec};
use crate::activation::Activation;

/// The name of batch normalisation in the metadata and on the command line.
pub const NAME: &str = "batch";

/// PyTorch's default momentum of its batch norms.
pub const DEFAULT_MOMENTUM: f32 = 0.1;

/// `BatchNorm1d(width, eps, momentum)` followed by `activation`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNorm {
    /// The width normalised (its input and output width).
    pub width: usize,
    /// `ε`, added to the variance.
    pub eps: f32,
    /// `m`, how far the running statistics move towards a batch's.
    pub momentum: f32,
    /// Activation applied to its output.
    pub activation: Activation,
}

/// The name of the checkpoint's count of training passes of block `block`'s batch norm.
pub fn batches_tracked_name(block: usize) -> String {
    format!("norms.{block}.num_batches_tracked")
}

impl BatchNorm {
    /// How many tensors it owns: its scale and shift, and its running mean and variance.
    pub const TENSORS: usize = 4;

    /// `norms.{block}.weight` (γ = 1), `norms.{block}.bias` (β = 0), trained, then the buffers
    /// `norms.{block}.running_mean` (0) and `norms.{block}.running_var` (1), `[width]` each.
    pub fn tensors(&self, block: usize) -> Vec<TensorSpec> {
        let tensor = |what: &str, value: f32, trained: bool| TensorSpec {
            name: format!("norms.{block}.{what}"),
            shape: vec![self.width],
            init: Init::Constant(value),
            trained,
        };
        vec![
            tensor("weight", 1.0, true),
            tensor("bias", 0.0, true),
            tensor("running_mean", 0.0, false),
            tensor("running_var", 1.0, false),
        ]
    }

    /// Its entry in a checkpoint's `architecture` metadata:
    /// `{"norm": "batch", "width", "eps", "momentum", "activation"}`.
    pub fn describe(&self) -> Value {
        // The f32s' shortest decimal forms, so that 1e-5 reads as 1e-5.
        let short = |v: f32| v.to_string().parse::<f64>().unwrap_or(f64::from(v));
        json!({
            "norm": NAME,
            "width": self.width,
            "eps": short(self.eps),
            "momentum": short(self.momentum),
            "activation": self.activation.name(),
        })
    }

    /// The layer an `architecture` entry describes; `None` when the entry is not a batch norm
    /// with a width, an `eps` above 0 and a momentum within [0, 1].
    pub fn read(entry: &Value) -> crate::error::Result<Option<Self>> {
        let momentum = entry
            .get("momentum")
            .and_then(Value::as_f64)
            .filter(|m| (0.0..=1.0).contains(m));
        Ok(read_norm(entry, NAME)?
            .zip(momentum)
            .map(|((width, eps, activation), momentum)| Self {
                width,
                eps,
                momentum: momentum as f32,
                activation,
            }))
    }
}
