//! AdamW, as `torch.optim.AdamW`: the config here, its update [`Adam`]'s (CPU loop and
//! `adam.wgsl`) with other coefficients. Adding an optimizer means a file like this (with a WGSL
//! of its own unless it shares one) and the edits the [`crate::optim`] module documentation
//! lists.

use super::adam::Adam;
use super::adam::{ADAM_OPTIONS, adam_coefficients, adam_state_slots, adam_update, validate_adam};
use super::hyperparameters::Hyperparameters;
use super::rule::{Coefficients, MAX_STATE_SLOTS, Rule, StateSlot};
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
}

impl Rule for AdamW {
    fn name(&self) -> &'static str {
        "AdamW"
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn options(&self) -> &'static [&'static str] {
        ADAM_OPTIONS
    }

    fn set(&mut self, h: &Hyperparameters) {
        self.lr = h.lr.unwrap_or(self.lr);
        self.beta1 = h.beta1.unwrap_or(self.beta1);
        self.beta2 = h.beta2.unwrap_or(self.beta2);
        self.eps = h.eps.unwrap_or(self.eps);
        self.weight_decay = h.weight_decay.unwrap_or(self.weight_decay);
        self.amsgrad = h.amsgrad.unwrap_or(self.amsgrad);
    }

    /// Checks the hyperparameters as `torch.optim.AdamW.__init__` does.
    fn validate(&self) -> Result<()> {
        validate_adam("AdamW", &self.as_adam())
    }

    fn state_slots(&self) -> Vec<StateSlot> {
        adam_state_slots(self.amsgrad)
    }

    fn coefficients(&self, step: u64) -> Coefficients {
        Coefficients::new(adam_coefficients(
            &self.as_adam(),
            step,
            0.0,
            1.0 - self.lr * self.weight_decay,
        ))
    }

    fn update(
        &self,
        c: &Coefficients,
        clip: f32,
        params: &mut [f32],
        grads: &[f32],
        state: [&mut [f32]; MAX_STATE_SLOTS],
    ) {
        adam_update(&c.get(), clip, params, grads, state);
    }

    fn wgsl(&self) -> &'static str {
        include_str!("adam.wgsl")
    }
}
