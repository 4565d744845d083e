//! RMSprop, as `torch.optim.RMSprop`.

use super::require;
use crate::error::Result;

/// `torch.optim.RMSprop(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False)`.
///
/// ```text
/// g  ← g_t + λ·θ                               (if λ ≠ 0)
/// s  ← α·s + (1 − α)·g²
/// if centered:  a ← lerp(a, g, 1 − α);  d ← √(s − a²) + ε
/// else:         d ← √s + ε                      (ε added after the square root)
/// if μ > 0:     b ← μ·b + g/d;  θ ← θ − γ·b
/// else:         θ ← θ − γ·g/d
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RmsProp {
    /// Learning rate `γ` (default 1e-2).
    pub lr: f64,
    /// Smoothing constant `α` (default 0.99).
    pub alpha: f64,
    /// `ε` (default 1e-8).
    pub eps: f64,
    /// L2 penalty `λ` (default 0).
    pub weight_decay: f64,
    /// Momentum `μ` (default 0).
    pub momentum: f64,
    /// Normalise by the estimated variance instead of the raw second moment (default false).
    pub centered: bool,
}

impl Default for RmsProp {
    fn default() -> Self {
        Self {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }
}

/// The scalars of one RMSprop step, laid out as the `rmsprop.wgsl` uniform.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RmsPropCoefficients {
    /// `γ`.
    pub lr: f32,
    /// `α`.
    pub alpha: f32,
    /// `1 − α`.
    pub one_minus_alpha: f32,
    /// `ε`.
    pub eps: f32,
    /// `λ`.
    pub weight_decay: f32,
    /// `μ`.
    pub momentum: f32,
    /// 1 when `μ > 0`.
    pub use_momentum: u32,
    /// 1 for the centered variant.
    pub centered: u32,
}

impl RmsProp {
    /// Checks the hyperparameters as `torch.optim.RMSprop.__init__` does.
    pub fn validate(&self) -> Result<()> {
        require(
            "RMSprop",
            "lr",
            self.lr,
            self.lr >= 0.0,
            "the learning rate must be >= 0",
        )?;
        require("RMSprop", "eps", self.eps, self.eps >= 0.0, "must be >= 0")?;
        require(
            "RMSprop",
            "momentum",
            self.momentum,
            self.momentum >= 0.0,
            "must be >= 0",
        )?;
        require(
            "RMSprop",
            "weight_decay",
            self.weight_decay,
            self.weight_decay >= 0.0,
            "must be >= 0",
        )?;
        require(
            "RMSprop",
            "alpha",
            self.alpha,
            self.alpha >= 0.0,
            "must be >= 0",
        )
    }

    /// The coefficients of one update (they do not depend on the step).
    pub fn coefficients(&self) -> RmsPropCoefficients {
        RmsPropCoefficients {
            lr: self.lr as f32,
            alpha: self.alpha as f32,
            one_minus_alpha: (1.0 - self.alpha) as f32,
            eps: self.eps as f32,
            weight_decay: self.weight_decay as f32,
            momentum: self.momentum as f32,
            use_momentum: u32::from(self.momentum > 0.0),
            centered: u32::from(self.centered),
        }
    }
}
