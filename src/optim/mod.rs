//! Optimizers with `torch.optim` semantics and defaults.
//!
//! Each config type documents its update as equations. On every step the host computes the
//! step's scalar coefficients in f64, as PyTorch does with Python floats, rounds them to f32
//! once, and hands the same [`Coefficients`] to both engines: the CPU reference applies them
//! with plain loops and the GPU uploads them as the fused optimizer kernel's uniform.

mod adadelta;
mod adagrad;
mod adam;
mod adamw;
mod rmsprop;
mod schedule;
mod sgd;

pub use adadelta::{Adadelta, AdadeltaCoefficients};
pub use adagrad::{Adagrad, AdagradCoefficients};
pub use adam::{Adam, AdamCoefficients};
pub use adamw::AdamW;
pub use rmsprop::{RmsProp, RmsPropCoefficients};
pub use schedule::{LrSchedule, Schedule};
pub use sgd::{Sgd, SgdCoefficients};

use crate::error::{Error, Result};

/// Most state tensors any optimizer keeps per parameter.
pub const MAX_STATE_SLOTS: usize = 3;

/// One of the supported optimizers with its hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Optimizer {
    /// `torch.optim.SGD`.
    Sgd(Sgd),
    /// `torch.optim.Adam`.
    Adam(Adam),
    /// `torch.optim.AdamW`.
    AdamW(AdamW),
    /// `torch.optim.RMSprop`.
    RmsProp(RmsProp),
    /// `torch.optim.Adagrad`.
    Adagrad(Adagrad),
    /// `torch.optim.Adadelta`.
    Adadelta(Adadelta),
}

/// A per-parameter state tensor an optimizer keeps, at a fixed slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StateSlot {
    /// Slot index in `0..MAX_STATE_SLOTS`; fixed per optimizer so kernels can address it.
    pub index: usize,
    /// PyTorch's name for it in `optimizer.state[p]` (`exp_avg`, `momentum_buffer`, ...).
    pub name: &'static str,
    /// The value it starts at.
    pub initial: f32,
}

/// The scalars of one update step, already rounded to f32.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Coefficients {
    /// For [`Sgd`].
    Sgd(SgdCoefficients),
    /// For [`Adam`] and [`AdamW`].
    Adam(AdamCoefficients),
    /// For [`RmsProp`].
    RmsProp(RmsPropCoefficients),
    /// For [`Adagrad`].
    Adagrad(AdagradCoefficients),
    /// For [`Adadelta`].
    Adadelta(AdadeltaCoefficients),
}

impl Coefficients {
    /// The bytes of the uniform block the optimizer kernel reads.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Coefficients::Sgd(c) => bytemuck::bytes_of(c),
            Coefficients::Adam(c) => bytemuck::bytes_of(c),
            Coefficients::RmsProp(c) => bytemuck::bytes_of(c),
            Coefficients::Adagrad(c) => bytemuck::bytes_of(c),
            Coefficients::Adadelta(c) => bytemuck::bytes_of(c),
        }
    }
}

impl Optimizer {
    /// PyTorch's class name.
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd(_) => "SGD",
            Optimizer::Adam(_) => "Adam",
            Optimizer::AdamW(_) => "AdamW",
            Optimizer::RmsProp(_) => "RMSprop",
            Optimizer::Adagrad(_) => "Adagrad",
            Optimizer::Adadelta(_) => "Adadelta",
        }
    }

    /// Checks every hyperparameter as PyTorch's constructor does.
    pub fn validate(&self) -> Result<()> {
        match self {
            Optimizer::Sgd(o) => o.validate(),
            Optimizer::Adam(o) => o.validate(),
            Optimizer::AdamW(o) => o.validate(),
            Optimizer::RmsProp(o) => o.validate(),
            Optimizer::Adagrad(o) => o.validate(),
            Optimizer::Adadelta(o) => o.validate(),
        }
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            Optimizer::Sgd(o) => o.lr,
            Optimizer::Adam(o) => o.lr,
            Optimizer::AdamW(o) => o.lr,
            Optimizer::RmsProp(o) => o.lr,
            Optimizer::Adagrad(o) => o.lr,
            Optimizer::Adadelta(o) => o.lr,
        }
    }

    /// The same optimizer at learning rate `lr` (what a schedule sets for one step).
    pub fn with_lr(&self, lr: f64) -> Optimizer {
        let mut o = *self;
        match &mut o {
            Optimizer::Sgd(x) => x.lr = lr,
            Optimizer::Adam(x) => x.lr = lr,
            Optimizer::AdamW(x) => x.lr = lr,
            Optimizer::RmsProp(x) => x.lr = lr,
            Optimizer::Adagrad(x) => x.lr = lr,
            Optimizer::Adadelta(x) => x.lr = lr,
        }
        o
    }

    /// The same optimizer with momentum `momentum` (SGD's and RMSprop's `μ`); an error for the
    /// optimizers that have none.
    pub fn with_momentum(&self, momentum: f64) -> Result<Optimizer> {
        let mut o = *self;
        match &mut o {
            Optimizer::Sgd(x) => x.momentum = momentum,
            Optimizer::RmsProp(x) => x.momentum = momentum,
            _ => {
                return Err(Error::Usage(format!(
                    "{} has no momentum; momentum applies to SGD and RMSprop",
                    self.name()
                )));
            }
        }
        o.validate()?;
        Ok(o)
    }

    /// The same optimizer with weight decay `weight_decay` (every optimizer's `λ`).
    pub fn with_weight_decay(&self, weight_decay: f64) -> Result<Optimizer> {
        let mut o = *self;
        match &mut o {
            Optimizer::Sgd(x) => x.weight_decay = weight_decay,
            Optimizer::Adam(x) => x.weight_decay = weight_decay,
            Optimizer::AdamW(x) => x.weight_decay = weight_decay,
            Optimizer::RmsProp(x) => x.weight_decay = weight_decay,
            Optimizer::Adagrad(x) => x.weight_decay = weight_decay,
            Optimizer::Adadelta(x) => x.weight_decay = weight_decay,
        }
        o.validate()?;
        Ok(o)
    }

    /// The state tensors these options need (unused ones, such as `max_exp_avg_sq` without
    /// amsgrad, are not allocated).
    pub fn state_slots(&self) -> Vec<StateSlot> {
        let slot = |index, name| StateSlot {
            index,
            name,
            initial: 0.0,
        };
        match self {
            Optimizer::Sgd(o) if o.momentum != 0.0 => vec![slot(0, "momentum_buffer")],
            Optimizer::Sgd(_) => vec![],
            Optimizer::Adam(Adam { amsgrad, .. }) | Optimizer::AdamW(AdamW { amsgrad, .. }) => {
                let mut slots = vec![slot(0, "exp_avg"), slot(1, "exp_avg_sq")];
                if *amsgrad {
                    slots.push(slot(2, "max_exp_avg_sq"));
                }
                slots
            }
            Optimizer::RmsProp(o) => {
                let mut slots = vec![slot(0, "square_avg")];
                if o.momentum > 0.0 {
                    slots.push(slot(1, "momentum_buffer"));
                }
                if o.centered {
                    slots.push(slot(2, "grad_avg"));
                }
                slots
            }
            Optimizer::Adagrad(o) => vec![StateSlot {
                index: 0,
                name: "sum",
                initial: o.initial_accumulator_value as f32,
            }],
            Optimizer::Adadelta(_) => vec![slot(0, "square_avg"), slot(1, "acc_delta")],
        }
    }

    /// The coefficients of update number `step` (1 for the first update).
    pub fn coefficients(&self, step: u64) -> Coefficients {
        match self {
            Optimizer::Sgd(o) => Coefficients::Sgd(o.coefficients(step)),
            Optimizer::Adam(o) => Coefficients::Adam(o.coefficients(step)),
            Optimizer::AdamW(o) => Coefficients::Adam(o.coefficients(step)),
            Optimizer::RmsProp(o) => Coefficients::RmsProp(o.coefficients()),
            Optimizer::Adagrad(o) => Coefficients::Adagrad(o.coefficients(step)),
            Optimizer::Adadelta(o) => Coefficients::Adadelta(o.coefficients()),
        }
    }
}

/// Returns an [`Error::InvalidHyperparameter`] unless `valid` holds and `value` is finite and
/// within f32's range (every hyperparameter reaches the engines as an f32).
pub(crate) fn require(
    optimizer: &'static str,
    name: &'static str,
    value: f64,
    valid: bool,
    reason: &'static str,
) -> Result<()> {
    if !value.is_finite() {
        return Err(Error::InvalidHyperparameter {
            optimizer,
            name,
            value,
            reason: "must be a finite number",
        });
    }
    if !valid {
        return Err(Error::InvalidHyperparameter {
            optimizer,
            name,
            value,
            reason,
        });
    }
    if value.abs() > f64::from(f32::MAX) {
        return Err(Error::InvalidHyperparameter {
            optimizer,
            name,
            value,
            reason: "is too large: the engines compute in f32, whose largest value is 3.4e38",
        });
    }
    if value != 0.0 && value as f32 == 0.0 {
        return Err(Error::InvalidHyperparameter {
            optimizer,
            name,
            value,
            reason: "is too small: the engines compute in f32, where it would be 0 (the \
                     smallest is about 1.4e-45)",
        });
    }
    Ok(())
}
