//! Layer normalisation as the model describes it: PyTorch's
//! `nn.LayerNorm(width, eps, elementwise_affine=True)` over each row, followed by an activation:
//!
//! ```text
//! μ = (1/n) Σ_c x_c        σ² = (1/n) Σ_c (x_c − μ)²        x̂_c = (x_c − μ) / √(σ² + ε)
//! y_c = γ_c · x̂_c + β_c    a_c = act(y_c)
//! ```
//!
//! Its tensors are `norms.{i}.weight` (γ, starting at 1) and `norms.{i}.bias` (β, starting at
//! 0), `[width]` each, `i` the index of the Linear it follows.

use serde_json::{Value, json};

use super::tensor::{Init, TensorSpec};
use crate::activation::Activation;

/// The name of layer normalisation in the metadata and on the command line.
pub const NAME: &str = "layer";

/// PyTorch's default `eps` of its norms.
pub const DEFAULT_EPS: f32 = 1e-5;

/// `LayerNorm(width, eps)` followed by `activation`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerNorm {
    /// The width normalised (its input and output width).
    pub width: usize,
    /// `ε`, added to the variance.
    pub eps: f32,
    /// Activation applied to its output.
    pub activation: Activation,
}

impl LayerNorm {
    /// How many tensors it owns: its scale γ and its shift β.
    pub const TENSORS: usize = 2;

    /// `norms.{block}.weight` (γ = 1) and `norms.{block}.bias` (β = 0), `[width]` each.
    pub fn tensors(&self, block: usize) -> Vec<TensorSpec> {
        vec![
            TensorSpec {
                name: format!("norms.{block}.weight"),
                shape: vec![self.width],
                init: Init::Constant(1.0),
                trained: true,
            },
            TensorSpec {
                name: format!("norms.{block}.bias"),
                shape: vec![self.width],
                init: Init::Constant(0.0),
                trained: true,
            },
        ]
    }

    /// Its entry in a checkpoint's `architecture` metadata:
    /// `{"norm": "layer", "width", "eps", "activation"}`.
    pub fn describe(&self) -> Value {
        json!({
            "norm": NAME,
            "width": self.width,
            // The f32's shortest decimal form, so that 1e-5 reads as 1e-5.
            "eps": self.eps.to_string().parse::<f64>().unwrap_or(f64::from(self.eps)),
            "activation": self.activation.name(),
        })
    }

    /// The layer an `architecture` entry describes; `None` when the entry is not a layer norm
    /// with a width and an `eps`.
    pub fn read(entry: &Value) -> crate::error::Result<Option<Self>> {
        Ok(
            read_norm(entry, NAME)?.map(|(width, eps, activation)| Self {
                width,
                eps,
                activation,
            }),
        )
    }
}

/// The width, `eps` and activation of an `architecture` entry of the norm named `name`; `None`
/// when the entry is another kind's, lacks one of them or has an `eps` that is not a finite
/// number above 0, an error when its activation is not one downhill knows.
pub(super) fn read_norm(
    entry: &Value,
    name: &str,
) -> crate::error::Result<Option<(usize, f32, Activation)>> {
    if entry.get("norm").and_then(Value::as_str) != Some(name) {
        return Ok(None);
    }
    let activation: Activation = entry
        .get("activation")
        .and_then(Value::as_str)
        .unwrap_or("")
        .parse()?;
    let width = entry.get("width").and_then(Value::as_u64);
    let eps = entry.get("eps").and_then(Value::as_f64);
    // An ε that is not a finite number above 0 (a file edited by hand) is no norm's.
    let eps = eps.map(|e| e as f32).filter(|e| e.is_finite() && *e > 0.0);
    Ok(width
        .zip(eps)
        .map(|(width, eps)| (width as usize, eps, activation)))
}
