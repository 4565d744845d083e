//! AdamW, as `torch.optim.AdamW`.

use super::adam::{adam_coefficients, validate_adam};
use super::{Adam, AdamCoefficients};
use crate::error::Result;

/// `torch.optim.AdamW(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False)`.
///
/// Decoupled weight decay: first `θ ← θ·(1 − γλ)` (the factor computed in f64, then rounded),
/// then the [`Adam`] update with no L2 term in the gradient.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamW {
    /// Learning rate `γ` (default 1e-3).
    pub lr: f64,
    /// `β₁` (default 0.9).
    pub beta1: f64,
    /// `β₂` (default 0.999).
    pub beta2: f64,
    /// `ε` (default 1e-8).
    pub eps: f64,
    /// Decoupled decay `λ` (default 1e-2).
    pub weight_decay: f64,
    /// Use the maximum of past second moments (default false).
    pub amsgrad: bool,
}

impl Default for AdamW {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
            amsgrad: false,
        }
    }
}

impl AdamW {
    /// The same hyperparameters read as Adam's.
    fn as_adam(&self) -> Adam {
        Adam {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            amsgrad: self.amsgrad,
        }
    }

    /// Checks the hyperparameters as `torch.optim.AdamW.__init__` does.
    pub fn validate(&self) -> Result<()> {
        validate_adam("AdamW", &self.as_adam())
    }

    /// The coefficients of update number `step` (from 1).
    pub fn coefficients(&self, step: u64) -> AdamCoefficients {
        adam_coefficients(
            &self.as_adam(),
            step,
            0.0,
            1.0 - self.lr * self.weight_decay,
        )
    }
}
