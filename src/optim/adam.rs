//! Adam, as `torch.optim.Adam`: the config, its coefficients and its CPU update here (shared
//! with [`AdamW`](super::AdamW)), its fused GPU update in `adam.wgsl` beside this file. Adding an
//! optimizer means two files like these and the edits the [`crate::optim`] module documentation
//! lists.

use itertools::izip;

use super::elementwise::{decayed_gradient, lerp};
use super::hyperparameters::Hyperparameters;
use super::require::require;
use super::rule::{Coefficients, MAX_STATE_SLOTS, Rule, StateSlot};
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

impl Rule for Adam {
    fn name(&self) -> &'static str {
        "Adam"
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

    /// Checks the hyperparameters as `torch.optim.Adam.__init__` does.
    fn validate(&self) -> Result<()> {
        validate_adam("Adam", self)
    }

    fn state_slots(&self) -> Vec<StateSlot> {
        adam_state_slots(self.amsgrad)
    }

    fn coefficients(&self, step: u64) -> Coefficients {
        Coefficients::new(adam_coefficients(self, step, self.weight_decay, 1.0))
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

/// The hyperparameters Adam and AdamW read.
pub(super) const ADAM_OPTIONS: &[&str] =
    &["lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad"];

/// The state of Adam and AdamW: `exp_avg`, `exp_avg_sq`, and `max_exp_avg_sq` with amsgrad.
pub(super) fn adam_state_slots(amsgrad: bool) -> Vec<StateSlot> {
    let mut slots = vec![
        StateSlot::zero(0, "exp_avg"),
        StateSlot::zero(1, "exp_avg_sq"),
    ];
    if amsgrad {
        slots.push(StateSlot::zero(2, "max_exp_avg_sq"));
    }
    slots
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

crate::simd::widest! {
    /// The CPU update of Adam and AdamW (whose coefficients differ, not its arithmetic), vectorised
    /// at the CPU's widest SIMD ([`crate::simd::widest`]).
    pub(super) fn adam_update(
        c: &AdamCoefficients,
        clip: f32,
        params: &mut [f32],
        grads: &[f32],
        state: [&mut [f32]; MAX_STATE_SLOTS],
    ) {
        let [exp_avg, exp_avg_sq, max_exp_avg_sq] = state;
        // The moments after this gradient; returns the decayed parameter's new second moment.
        let moments = |p: &mut f32, g: f32, m: &mut f32, v: &mut f32| {
            *p *= c.decay_factor;
            let g = decayed_gradient(g, clip, *p, c.weight_decay);
            *m = lerp(*m, g, c.one_minus_beta1);
            *v = c.beta2 * *v + c.one_minus_beta2 * g * g;
        };
        let apply = |p: &mut f32, m: f32, second: f32| {
            let denom = second.sqrt() / c.bias_correction2_sqrt + c.eps;
            *p -= c.step_size * m / denom;
        };
        if c.amsgrad != 0 {
            for (p, &g, m, v, vmax) in izip!(params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq) {
                moments(p, g, m, v);
                *vmax = vmax.max(*v);
                apply(p, *m, *vmax);
            }
        } else {
            for (p, &g, m, v) in izip!(params, grads, exp_avg, exp_avg_sq) {
                moments(p, g, m, v);
                apply(p, *m, *v);
            }
        }
    }
}
