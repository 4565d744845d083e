//! AdaDelta, as `torch.optim.Adadelta`.

use super::require;
use crate::error::Result;

/// `torch.optim.Adadelta(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0)`.
///
/// With gradient `g_t`, parameter `θ`, learning rate `γ`, decay `ρ` and weight decay `λ`, and
/// both running averages `v` (of squared gradients) and `u` (of squared updates) starting at 0:
///
/// ```text
/// g  ← g_t + λ·θ                          (if λ ≠ 0)
/// v  ← ρ·v + (1 − ρ)·g²
/// Δ  ← (√(u + ε) / √(v + ε)) · g
/// u  ← ρ·u + (1 − ρ)·Δ²
/// θ  ← θ − γ·Δ
/// ```
///
/// PyTorch names `v` `square_avg` and `u` `acc_delta`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adadelta {
    /// Learning rate `γ`, a scale on the update (default 1.0).
    pub lr: f64,
    /// Decay `ρ` of both running averages (default 0.9).
    pub rho: f64,
    /// `ε`, inside both square roots (default 1e-6).
    pub eps: f64,
    /// L2 penalty `λ` added to the gradient (default 0).
    pub weight_decay: f64,
}

impl Default for Adadelta {
    fn default() -> Self {
        Self {
            lr: 1.0,
            rho: 0.9,
            eps: 1e-6,
            weight_decay: 0.0,
        }
    }
}

/// The scalars of one AdaDelta step, laid out as the `adadelta.wgsl` coefficients.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AdadeltaCoefficients {
    /// `γ`.
    pub lr: f32,
    /// `ρ`.
    pub rho: f32,
    /// `1 − ρ`.
    pub one_minus_rho: f32,
    /// `ε`.
    pub eps: f32,
    /// `λ`.
    pub weight_decay: f32,
    /// Padding to 32 bytes.
    pub _pad: [u32; 3],
}

impl Adadelta {
    /// Checks the hyperparameters as `torch.optim.Adadelta.__init__` does.
    pub fn validate(&self) -> Result<()> {
        require(
            "Adadelta",
            "lr",
            self.lr,
            self.lr >= 0.0,
            "the learning rate must be >= 0",
        )?;
        require(
            "Adadelta",
            "rho",
            self.rho,
            (0.0..=1.0).contains(&self.rho),
            "must be in [0, 1]",
        )?;
        require("Adadelta", "eps", self.eps, self.eps >= 0.0, "must be >= 0")?;
        require(
            "Adadelta",
            "weight_decay",
            self.weight_decay,
            self.weight_decay >= 0.0,
            "must be >= 0",
        )
    }

    /// The coefficients of every step (AdaDelta's do not change with the step).
    pub fn coefficients(&self) -> AdadeltaCoefficients {
        AdadeltaCoefficients {
            lr: self.lr as f32,
            rho: self.rho as f32,
            one_minus_rho: (1.0 - self.rho) as f32,
            eps: self.eps as f32,
            weight_decay: self.weight_decay as f32,
            _pad: [0; 3],
        }
    }
}
