//! Adam, as `torch.optim.Adam`.

use super::require;
use crate::error::Result;

/// `torch.optim.Adam(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)`.
///
/// With gradient `g_t` at step `t` (from 1), parameter `θ`, learning rate `γ`:
///
/// ```text
/// g   ← g_t + λ·θ                                  (if λ ≠ 0; L2 penalty in the gradient)
/// m   ← lerp(m, g, 1 − β₁)  = m + (1 − β₁)(g − m)
/// v   ← β₂·v + (1 − β₂)·g²
/// v̂   ← max(v̂, v)  if amsgrad, else v̂ = v         (max over the raw second moment)
/// θ   ← θ − (γ / (1 − β₁ᵗ)) · m / (√v̂ / √(1 − β₂ᵗ) + ε)
/// ```
///
/// `γ/(1 − β₁ᵗ)` and `√(1 − β₂ᵗ)` are computed in f64 on the host, as PyTorch computes them
/// in Python floats, then rounded to f32.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adam {
    /// Learning rate `γ` (default 1e-3).
    pub lr: f64,
    /// `β₁`, decay of the first moment (default 0.9).
    pub beta1: f64,
    /// `β₂`, decay of the second moment (default 0.999).
    pub beta2: f64,
    /// `ε`, added to the denominator (default 1e-8).
    pub eps: f64,
    /// L2 penalty `λ` added to the gradient (default 0).
    pub weight_decay: f64,
    /// Use the maximum of past second moments (default false).
    pub amsgrad: bool,
}

impl Default for Adam {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
        }
    }
}

/// The scalars of one Adam or AdamW step, laid out as the `adam.wgsl` uniform.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct AdamCoefficients {
    /// `1 − β₁`, the lerp weight of the first moment.
    pub one_minus_beta1: f32,
    /// `β₂`.
    pub beta2: f32,
    /// `1 − β₂`.
    pub one_minus_beta2: f32,
    /// `γ / (1 − β₁ᵗ)`.
    pub step_size: f32,
    /// `√(1 − β₂ᵗ)`.
    pub bias_correction2_sqrt: f32,
    /// `ε`.
    pub eps: f32,
    /// L2 penalty added to the gradient (Adam's `λ`; 0 for AdamW).
    pub weight_decay: f32,
    /// Decoupled decay factor `1 − γλ` applied to `θ` first (AdamW; 1 for Adam).
    pub decay_factor: f32,
    /// 1 for amsgrad.
    pub amsgrad: u32,
    /// Padding to 16 bytes.
    pub _pad: [u32; 3],
}

impl Adam {
    /// Checks the hyperparameters as `torch.optim.Adam.__init__` does.
    pub fn validate(&self) -> Result<()> {
        validate_adam("Adam", self)
    }

    /// The coefficients of update number `step` (from 1).
    pub fn coefficients(&self, step: u64) -> AdamCoefficients {
        adam_coefficients(self, step, self.weight_decay, 1.0)
    }
}

/// Validation shared by Adam and AdamW.
pub(super) fn validate_adam(name: &'static str, o: &Adam) -> Result<()> {
    require(
        name,
        "lr",
        o.lr,
        o.lr >= 0.0,
        "the learning rate must be >= 0",
    )?;
    require(name, "eps", o.eps, o.eps >= 0.0, "must be >= 0")?;
    let in_unit = |b: f64| (0.0..1.0).contains(&b);
    require(
        name,
        "beta1",
        o.beta1,
        in_unit(o.beta1),
        "must be in [0, 1)",
    )?;
    require(
        name,
        "beta2",
        o.beta2,
        in_unit(o.beta2),
        "must be in [0, 1)",
    )?;
    require(
        name,
        "weight_decay",
        o.weight_decay,
        o.weight_decay >= 0.0,
        "must be >= 0",
    )
}

/// Coefficients shared by Adam (`l2` = λ, `decay_factor` = 1) and AdamW (`l2` = 0, `1 − γλ`).
pub(super) fn adam_coefficients(
    o: &Adam,
    step: u64,
    l2: f64,
    decay_factor: f64,
) -> AdamCoefficients {
    let t = step as f64;
    let bias_correction1 = 1.0 - o.beta1.powf(t);
    let bias_correction2 = 1.0 - o.beta2.powf(t);
    AdamCoefficients {
        one_minus_beta1: (1.0 - o.beta1) as f32,
        beta2: o.beta2 as f32,
        one_minus_beta2: (1.0 - o.beta2) as f32,
        step_size: (o.lr / bias_correction1) as f32,
        bias_correction2_sqrt: bias_correction2.sqrt() as f32,
        eps: o.eps as f32,
        weight_decay: l2 as f32,
        decay_factor: decay_factor as f32,
        amsgrad: u32::from(o.amsgrad),
        _pad: [0; 3],
    }
}
