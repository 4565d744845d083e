//! AdaDelta, as `torch.optim.Adadelta`: the config, its coefficients and its CPU update here,
//! its fused GPU update in `adadelta.wgsl` beside this file. Adding an optimizer means two files
//! like these and the edits the [`crate::optim`] module documentation lists.

use itertools::izip;

use super::elementwise::decayed_gradient;
use super::hyperparameters::Hyperparameters;
use super::require::require;
use super::rule::{Coefficients, MAX_STATE_SLOTS, Rule, StateSlot};
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

impl Rule for Adadelta {
    fn name(&self) -> &'static str {
        "Adadelta"
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn options(&self) -> &'static [&'static str] {
        &["lr", "rho", "eps", "weight_decay"]
    }

    fn set(&mut self, h: &Hyperparameters) {
        self.lr = h.lr.unwrap_or(self.lr);
        self.rho = h.rho.unwrap_or(self.rho);
        self.eps = h.eps.unwrap_or(self.eps);
        self.weight_decay = h.weight_decay.unwrap_or(self.weight_decay);
    }

    /// Checks the hyperparameters as `torch.optim.Adadelta.__init__` does.
    fn validate(&self) -> Result<()> {
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

    /// `square_avg` (`v`) and `acc_delta` (`u`).
    fn state_slots(&self) -> Vec<StateSlot> {
        vec![
            StateSlot::zero(0, "square_avg"),
            StateSlot::zero(1, "acc_delta"),
        ]
    }

    /// The same every step.
    fn coefficients(&self, _step: u64) -> Coefficients {
        Coefficients::new(AdadeltaCoefficients {
            lr: self.lr as f32,
            rho: self.rho as f32,
            one_minus_rho: (1.0 - self.rho) as f32,
            eps: self.eps as f32,
            weight_decay: self.weight_decay as f32,
            _pad: [0; 3],
        })
    }

    fn update(
        &self,
        c: &Coefficients,
        clip: f32,
        params: &mut [f32],
        grads: &[f32],
        state: [&mut [f32]; MAX_STATE_SLOTS],
    ) {
        adadelta_update(&c.get(), clip, params, grads, state);
    }

    fn wgsl(&self) -> &'static str {
        include_str!("adadelta.wgsl")
    }
}

crate::simd::widest! {
    /// Adadelta's update of a piece of a tensor, element by element, vectorised at the CPU's widest SIMD
    /// ([`crate::simd::widest`]).
    fn adadelta_update(
        c: &AdadeltaCoefficients,
        clip: f32,
        params: &mut [f32],
        grads: &[f32],
        state: [&mut [f32]; MAX_STATE_SLOTS],
    ) {
        let [square_avg, acc_delta, _] = state;
        for (p, &g, v, u) in izip!(params, grads, square_avg, acc_delta) {
            let g = decayed_gradient(g, clip, *p, c.weight_decay);
            *v = c.rho * *v + c.one_minus_rho * g * g;
            let delta = (*u + c.eps).sqrt() / (*v + c.eps).sqrt() * g;
            *u = c.rho * *u + c.one_minus_rho * delta * delta;
            *p -= c.lr * delta;
        }
    }
}
