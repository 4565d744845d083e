//! Adagrad, as `torch.optim.Adagrad`: the config, its coefficients and its CPU update here, its
//! fused GPU update in `adagrad.wgsl` beside this file. Adding an optimizer means two files like
//! these and the edits the [`crate::optim`] module documentation lists.

use itertools::izip;

use super::elementwise::decayed_gradient;
use super::hyperparameters::Hyperparameters;
use super::require::require;
use super::rule::{Coefficients, MAX_STATE_SLOTS, Rule, StateSlot};
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

impl Rule for Adagrad {
    fn name(&self) -> &'static str {
        "Adagrad"
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn options(&self) -> &'static [&'static str] {
        &[
            "lr",
            "lr_decay",
            "weight_decay",
            "initial_accumulator_value",
            "eps",
        ]
    }

    fn set(&mut self, h: &Hyperparameters) {
        self.lr = h.lr.unwrap_or(self.lr);
        self.lr_decay = h.lr_decay.unwrap_or(self.lr_decay);
        self.weight_decay = h.weight_decay.unwrap_or(self.weight_decay);
        self.initial_accumulator_value = h
            .initial_accumulator_value
            .unwrap_or(self.initial_accumulator_value);
        self.eps = h.eps.unwrap_or(self.eps);
    }

    /// Checks the hyperparameters as `torch.optim.Adagrad.__init__` does.
    fn validate(&self) -> Result<()> {
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

    /// `sum`, starting at `initial_accumulator_value`.
    fn state_slots(&self) -> Vec<StateSlot> {
        vec![StateSlot {
            index: 0,
            name: "sum",
            initial: self.initial_accumulator_value as f32,
        }]
    }

    fn coefficients(&self, step: u64) -> Coefficients {
        Coefficients::new(AdagradCoefficients {
            clr: (self.lr / (1.0 + (step as f64 - 1.0) * self.lr_decay)) as f32,
            weight_decay: self.weight_decay as f32,
            eps: self.eps as f32,
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
        adagrad_update(&c.get(), clip, params, grads, state);
    }

    fn wgsl(&self) -> &'static str {
        include_str!("adagrad.wgsl")
    }
}

crate::simd::widest! {
    /// Adagrad's update of a piece of a tensor, element by element, vectorised at the CPU's widest SIMD
    /// ([`crate::simd::widest`]).
    fn adagrad_update(
        c: &AdagradCoefficients,
        clip: f32,
        params: &mut [f32],
        grads: &[f32],
        state: [&mut [f32]; MAX_STATE_SLOTS],
    ) {
        let [sum, _, _] = state;
        for (p, &g, s) in izip!(params, grads, sum) {
            let g = decayed_gradient(g, clip, *p, c.weight_decay);
            *s += g * g;
            *p -= c.clr * g / (s.sqrt() + c.eps);
        }
    }
}
