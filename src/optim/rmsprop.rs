//! RMSprop, as `torch.optim.RMSprop`: the config, its coefficients and its CPU update here, its
//! fused GPU update in `rmsprop.wgsl` beside this file. Adding an optimizer means two files like
//! these and the edits the [`crate::optim`] module documentation lists.

use itertools::izip;

use super::elementwise::{decayed_gradient, lerp};
use super::hyperparameters::Hyperparameters;
use super::require::require;
use super::rule::{Coefficients, MAX_STATE_SLOTS, Rule, StateSlot};
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

impl Rule for RmsProp {
    fn name(&self) -> &'static str {
        "RMSprop"
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn options(&self) -> &'static [&'static str] {
        &["lr", "alpha", "eps", "weight_decay", "momentum", "centered"]
    }

    fn set(&mut self, h: &Hyperparameters) {
        self.lr = h.lr.unwrap_or(self.lr);
        self.alpha = h.alpha.unwrap_or(self.alpha);
        self.eps = h.eps.unwrap_or(self.eps);
        self.weight_decay = h.weight_decay.unwrap_or(self.weight_decay);
        self.momentum = h.momentum.unwrap_or(self.momentum);
        self.centered = h.centered.unwrap_or(self.centered);
    }

    /// Checks the hyperparameters as `torch.optim.RMSprop.__init__` does.
    fn validate(&self) -> Result<()> {
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

    /// `square_avg`; `momentum_buffer` when `μ > 0`; `grad_avg` when centered.
    fn state_slots(&self) -> Vec<StateSlot> {
        let mut slots = vec![StateSlot::zero(0, "square_avg")];
        if self.momentum > 0.0 {
            slots.push(StateSlot::zero(1, "momentum_buffer"));
        }
        if self.centered {
            slots.push(StateSlot::zero(2, "grad_avg"));
        }
        slots
    }

    /// The same every step.
    fn coefficients(&self, _step: u64) -> Coefficients {
        Coefficients::new(RmsPropCoefficients {
            lr: self.lr as f32,
            alpha: self.alpha as f32,
            one_minus_alpha: (1.0 - self.alpha) as f32,
            eps: self.eps as f32,
            weight_decay: self.weight_decay as f32,
            momentum: self.momentum as f32,
            use_momentum: u32::from(self.momentum > 0.0),
            centered: u32::from(self.centered),
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
        rmsprop_update(&c.get(), clip, params, grads, state);
    }

    fn wgsl(&self) -> &'static str {
        include_str!("rmsprop.wgsl")
    }
}

crate::simd::widest! {
    /// RMSprop's update of a piece of a tensor, element by element, vectorised at the CPU's widest SIMD
    /// ([`crate::simd::widest`]).
    fn rmsprop_update(
        c: &RmsPropCoefficients,
        clip: f32,
        params: &mut [f32],
        grads: &[f32],
        state: [&mut [f32]; MAX_STATE_SLOTS],
    ) {
        let [square_avg, momentum_buffer, grad_avg] = state;
            let apply = |p: &mut f32, g: f32, denom: f32, b: Option<&mut f32>| match b {
                Some(b) => {
                    *b = c.momentum * *b + g / denom;
                    *p -= c.lr * *b;
                }
                None => *p -= c.lr * g / denom,
            };
        // One loop per variant, so that each vectorises.
        match (c.centered != 0, c.use_momentum != 0) {
            (false, false) => {
                for (p, &g, s) in izip!(params, grads, square_avg) {
                    let g = decayed_gradient(g, clip, *p, c.weight_decay);
                    *s = c.alpha * *s + c.one_minus_alpha * g * g;
                    apply(p, g, s.sqrt() + c.eps, None);
                }
            }
            (false, true) => {
                for (p, &g, s, b) in izip!(params, grads, square_avg, momentum_buffer) {
                    let g = decayed_gradient(g, clip, *p, c.weight_decay);
                    *s = c.alpha * *s + c.one_minus_alpha * g * g;
                    apply(p, g, s.sqrt() + c.eps, Some(b));
                }
            }
            (true, momentum) => {
                let centered =
                    |p: &mut f32, g: f32, s: &mut f32, a: &mut f32, b: Option<&mut f32>| {
                        let g = decayed_gradient(g, clip, *p, c.weight_decay);
                        *s = c.alpha * *s + c.one_minus_alpha * g * g;
                        *a = lerp(*a, g, c.one_minus_alpha);
                        apply(p, g, (*s - *a * *a).sqrt() + c.eps, b);
                    };
                if momentum {
                    for (p, &g, s, a, b) in
                        izip!(params, grads, square_avg, grad_avg, momentum_buffer)
                    {
                        centered(p, g, s, a, Some(b));
                    }
                } else {
                    for (p, &g, s, a) in izip!(params, grads, square_avg, grad_avg) {
                        centered(p, g, s, a, None);
                    }
                }
            }
        }
    }
}
