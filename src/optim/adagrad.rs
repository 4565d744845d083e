//! Adagrad, as `torch.optim.Adagrad`.

use super::require;
use crate::error::Result;

/// `torch.optim.Adagrad(lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10)`.
///
/// At step `t` (from 1):
///
/// ```text
/// g   ← g_t + λ·θ                         (if λ ≠ 0)
/// γ̃   ← γ / (1 + (t − 1)·η)               (η = lr_decay; computed in f64)
/// s   ← s + g²                             (s starts at initial_accumulator_value)
/// θ   ← θ − γ̃ · g / (√s + ε)
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adagrad {
    /// Learning rate `γ` (default 1e-2).
    pub lr: f64,
    /// Learning-rate decay `η` (default 0).
    pub lr_decay: f64,
    /// L2 penalty `λ` (default 0).
    pub weight_decay: f64,
    /// Starting value of the sum of squares (default 0).
    pub initial_accumulator_value: f64,
    /// `ε` (default 1e-10).
    pub eps: f64,
}

impl Default for Adagrad {
    fn default() -> Self {
        Self {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
        }
    }
}

/// The scalars of one Adagrad step, laid out as the `adagrad.wgsl` uniform.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AdagradCoefficients {
    /// `γ̃ = γ / (1 + (t − 1)·η)`.
    pub clr: f32,
    /// `λ`.
    pub weight_decay: f32,
    /// `ε`.
    pub eps: f32,
    /// Padding to 16 bytes.
    pub _pad: u32,
}

impl Adagrad {
    /// Checks the hyperparameters as `torch.optim.Adagrad.__init__` does.
    pub fn validate(&self) -> Result<()> {
        require(
            "Adagrad",
            "lr",
            self.lr,
            self.lr >= 0.0,
            "the learning rate must be >= 0",
        )?;
        require(
            "Adagrad",
            "lr_decay",
            self.lr_decay,
            self.lr_decay >= 0.0,
            "must be >= 0",
        )?;
        require(
            "Adagrad",
            "weight_decay",
            self.weight_decay,
            self.weight_decay >= 0.0,
            "must be >= 0",
        )?;
        require(
            "Adagrad",
            "initial_accumulator_value",
            self.initial_accumulator_value,
            self.initial_accumulator_value >= 0.0,
            "must be >= 0",
        )?;
        require("Adagrad", "eps", self.eps, self.eps >= 0.0, "must be >= 0")
    }

    /// The coefficients of update number `step` (from 1).
    pub fn coefficients(&self, step: u64) -> AdagradCoefficients {
        AdagradCoefficients {
            clr: (self.lr / (1.0 + (step as f64 - 1.0) * self.lr_decay)) as f32,
            weight_decay: self.weight_decay as f32,
            eps: self.eps as f32,
            _pad: 0,
        }
    }
}
