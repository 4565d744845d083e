//! Stochastic gradient descent, as `torch.optim.SGD`: the config, its coefficients and its CPU
//! update here, its fused GPU update in `sgd.wgsl` beside this file. Adding an optimizer means
//! two files like these and the edits the [`crate::optim`] module documentation lists.

use itertools::izip;

use super::elementwise::decayed_gradient;
use super::hyperparameters::Hyperparameters;
use super::require::require;
use super::rule::{Coefficients, MAX_STATE_SLOTS, Rule, StateSlot};
use crate::error::Result;

/// `torch.optim.SGD(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False)`.
///
/// With gradient `g_t`, parameter `θ`, learning rate `γ`, momentum `μ`, dampening `τ` and
/// weight decay `λ`, one step is:
///
/// ```text
/// g  ← g_t + λ·θ                            (if λ ≠ 0)
/// if μ ≠ 0:
///     b ← g                                  (first step)
///     b ← μ·b + (1 − τ)·g                    (later steps)
///     g ← g + μ·b    if nesterov,  else  g ← b
/// θ  ← θ − γ·g
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sgd {
    /// Learning rate `γ` (default 1e-3).
    pub lr: f64,
    /// Momentum factor `μ` (default 0).
    pub momentum: f64,
    /// Dampening `τ` for momentum (default 0).
    pub dampening: f64,
    /// L2 penalty `λ` added to the gradient (default 0).
    pub weight_decay: f64,
    /// Nesterov momentum (default false; needs `μ > 0` and `τ = 0`).
    pub nesterov: bool,
}

impl Default for Sgd {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

/// The scalars of one SGD step, laid out as the `sgd.wgsl` uniform.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct SgdCoefficients {
    /// `γ`.
    pub lr: f32,
    /// `μ`.
    pub momentum: f32,
    /// `1 − τ`.
    pub one_minus_dampening: f32,
    /// `λ`.
    pub weight_decay: f32,
    /// 1 on the first step (the momentum buffer is set to `g`), else 0.
    pub first_step: u32,
    /// 1 for Nesterov momentum.
    pub nesterov: u32,
    /// 1 when `μ ≠ 0`.
    pub use_momentum: u32,
    /// Padding to 16 bytes.
    pub _pad: u32,
}

impl Rule for Sgd {
    fn name(&self) -> &'static str {
        "SGD"
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn options(&self) -> &'static [&'static str] {
        &["lr", "momentum", "dampening", "weight_decay", "nesterov"]
    }

    fn set(&mut self, h: &Hyperparameters) {
        self.lr = h.lr.unwrap_or(self.lr);
        self.momentum = h.momentum.unwrap_or(self.momentum);
        self.dampening = h.dampening.unwrap_or(self.dampening);
        self.weight_decay = h.weight_decay.unwrap_or(self.weight_decay);
        self.nesterov = h.nesterov.unwrap_or(self.nesterov);
    }

    /// Checks the hyperparameters as `torch.optim.SGD.__init__` does.
    fn validate(&self) -> Result<()> {
        require(
            "SGD",
            "lr",
            self.lr,
            self.lr >= 0.0,
            "the learning rate must be >= 0",
        )?;
        require(
            "SGD",
            "momentum",
            self.momentum,
            self.momentum >= 0.0,
            "must be >= 0",
        )?;
        require("SGD", "dampening", self.dampening, true, "")?;
        require(
            "SGD",
            "weight_decay",
            self.weight_decay,
            self.weight_decay >= 0.0,
            "must be >= 0",
        )?;
        if self.nesterov {
            require(
                "SGD",
                "momentum",
                self.momentum,
                self.momentum > 0.0,
                "nesterov momentum needs momentum > 0",
            )?;
            require(
                "SGD",
                "dampening",
                self.dampening,
                self.dampening == 0.0,
                "nesterov momentum needs zero dampening",
            )?;
        }
        Ok(())
    }

    /// `momentum_buffer` when `μ ≠ 0`.
    fn state_slots(&self) -> Vec<StateSlot> {
        if self.momentum != 0.0 {
            vec![StateSlot::zero(0, "momentum_buffer")]
        } else {
            vec![]
        }
    }

    fn coefficients(&self, step: u64) -> Coefficients {
        Coefficients::new(SgdCoefficients {
            lr: self.lr as f32,
            momentum: self.momentum as f32,
            one_minus_dampening: (1.0 - self.dampening) as f32,
            weight_decay: self.weight_decay as f32,
            first_step: u32::from(step == 1),
            nesterov: u32::from(self.nesterov),
            use_momentum: u32::from(self.momentum != 0.0),
            _pad: 0,
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
        sgd_update(&c.get(), clip, params, grads, state);
    }

    fn wgsl(&self) -> &'static str {
        include_str!("sgd.wgsl")
    }
}

crate::simd::widest! {
    /// SGD's update of a piece of a tensor, element by element, vectorised at the CPU's widest SIMD
    /// ([`crate::simd::widest`]).
    fn sgd_update(
        c: &SgdCoefficients,
        clip: f32,
        params: &mut [f32],
        grads: &[f32],
        state: [&mut [f32]; MAX_STATE_SLOTS],
    ) {
        let [buffer, _, _] = state;
        if c.use_momentum == 0 {
            for (p, &g) in izip!(params, grads) {
                *p -= c.lr * decayed_gradient(g, clip, *p, c.weight_decay);
            }
            return;
        }
        for (p, &g, b) in izip!(params, grads, buffer) {
            let g = decayed_gradient(g, clip, *p, c.weight_decay);
            *b = if c.first_step != 0 {
                g
            } else {
                c.momentum * *b + c.one_minus_dampening * g
            };
            let step = if c.nesterov != 0 {
                g + c.momentum * *b
            } else {
                *b
            };
            *p -= c.lr * step;
        }
    }
}
