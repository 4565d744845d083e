//! Learning-rate schedules: the learning rate of every step, from the base rate `γ₀`.
//!
//! With `t` the 0-based step, `s` the steps per epoch, `e = ⌊t / s⌋` the epoch and `T` the
//! total steps of the run:
//! - `Constant`: `γ = γ₀`.
//! - `Step { every, gamma }`: `γ = γ₀ · gamma^⌊e / every⌋` (PyTorch's `StepLR`, stepped per epoch).
//! - `Exponential { gamma }`: `γ = γ₀ · gamma^e` (`ExponentialLR`, stepped per epoch).
//! - `Cosine { min_lr }`: `γ = min + (γ₀ − min)(1 + cos(π t / T)) / 2`, per step
//!   (`CosineAnnealingLR` with `T_max = T`).
//!
//! A linear warm-up of `w` steps multiplies the above by `(t + 1) / w` for `t < w`.

use crate::error::{Error, Result};

/// The shape of the learning rate over the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` every `every` epochs.
    Step {
        /// Epochs between decays.
        every: u64,
        /// Decay factor.
        gamma: f64,
    },
    /// Multiply by `gamma` every epoch.
    Exponential {
        /// Decay factor.
        gamma: f64,
    },
    /// Cosine annealing from the base rate to `min_lr` over the whole run.
    Cosine {
        /// The final learning rate.
        min_lr: f64,
    },
}

/// A schedule with an optional linear warm-up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrSchedule {
    /// The schedule after warm-up.
    pub schedule: Schedule,
    /// Steps of linear warm-up (0 for none).
    pub warmup_steps: u64,
}

impl Default for LrSchedule {
    fn default() -> Self {
        Self {
            schedule: Schedule::Constant,
            warmup_steps: 0,
        }
    }
}

impl LrSchedule {
    /// The learning rate of step `t` (0-based) of a run of `total` steps, `per_epoch` a epoch;
    /// 0 where it has decayed below what f32 can hold.
    pub fn lr(&self, base: f64, t: u64, per_epoch: u64, total: u64) -> f64 {
        let epoch = t / per_epoch.max(1);
        let lr = match self.schedule {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => base * gamma.powf((epoch / every.max(1)) as f64),
            Schedule::Exponential { gamma } => base * gamma.powf(epoch as f64),
            Schedule::Cosine { min_lr } => {
                let progress = t as f64 / total.max(1) as f64;
                min_lr + (base - min_lr) * (1.0 + (std::f64::consts::PI * progress).cos()) / 2.0
            }
        };
        let lr = if t < self.warmup_steps {
            lr * (t + 1) as f64 / self.warmup_steps as f64
        } else {
            lr
        };
        // A rate that decays below f32's smallest value is 0 to the engines, as in PyTorch's f32.
        if lr != 0.0 && lr as f32 == 0.0 {
            0.0
        } else {
            lr
        }
    }
}

impl std::str::FromStr for Schedule {
    type Err = Error;

    /// `constant`, `step:EVERY:GAMMA`, `exponential:GAMMA`, `cosine` or `cosine:MIN_LR`.
    fn from_str(text: &str) -> Result<Self> {
        let bad = || {
            Error::Usage(format!(
                "unknown schedule `{text}`; expected constant, step:EPOCHS:GAMMA (e.g. step:10:0.5), \
                 exponential:GAMMA (e.g. exponential:0.95), cosine or cosine:MIN_LR"
            ))
        };
        let parts: Vec<&str> = text.trim().split(':').collect();
        let number = |s: &str| {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(bad)
        };
        Ok(match parts[..] {
            ["constant"] => Schedule::Constant,
            ["step", every, gamma] => Schedule::Step {
                every: every
                    .parse()
                    .ok()
                    .filter(|&e: &u64| e > 0)
                    .ok_or_else(bad)?,
                gamma: number(gamma)?,
            },
            ["exponential", gamma] => Schedule::Exponential {
                gamma: number(gamma)?,
            },
            ["cosine"] => Schedule::Cosine { min_lr: 0.0 },
            ["cosine", min] => Schedule::Cosine {
                min_lr: number(min)?,
            },
            _ => return Err(bad()),
        })
    }
}
