//! Optimizers with `torch.optim` semantics and defaults.
//!
//! Each config type documents its update as equations. On every step the host computes the
//! step's scalar coefficients in f64, as PyTorch does with Python floats, rounds them to f32
//! once, and hands the same [`Coefficients`] to both engines: the CPU reference applies them
//! with plain loops and the GPU uploads them as the fused optimizer kernel's uniform.
//!
//! # Adding an optimizer
//!
//! An optimizer is two files of its own, here in `src/optim/`:
//!
//! - `X.rs`: its config, with PyTorch's defaults documented on the fields and the update
//!   written as equations in its doc comment; its `Default`; its coefficients, a `#[repr(C)]`
//!   Pod struct laid out as its WGSL `Coefficients`; and its [`Rule`] impl: PyTorch's class name
//!   (in lower case, the command line's `--optimizer` value), validation, the
//!   [`Hyperparameters`] it reads and how it takes them, its state slots, the coefficients of a
//!   step, its CPU update element by element, and its WGSL;
//! - `X.wgsl`: its `update` function, which `src/gpu/ops/optimizer.wgsl` (the kernel's skeleton,
//!   saying what the function and its bindings must be) completes into the fused kernel. Like
//!   every kernel it has no loop that could run forever and divides integers only by nonzero
//!   constants (see the safety note of `module` in `src/gpu/ops/shader.rs`).
//!
//! Besides those it edits one file, this one: `mod X;` and its `pub use`, the [`Optimizer`]
//! variant, and its line in each of the three lists of the dispatch (`Optimizer::all`,
//! `Optimizer::rule` and `Optimizer::rule_mut`). Only a hyperparameter that no optimizer had
//! before takes more: its field in [`Hyperparameters`] and its line in
//! [`Hyperparameters::given`] (`hyperparameters.rs`) and in this file's tests, and the command
//! line's optimizer flag group,
//! `src/cli/args/optimizer.rs` (its flag, and its line in `OptimizerArgs::hyperparameters`).
//! That file's help texts name the optimizers that read each flag (`--eps` lists five), so a
//! new optimizer reading a hyperparameter that others have may add its name there too: words
//! only, no code.
//!
//! No other code chooses by optimizer: the engines, the command line (its `--optimizer`
//! values, its warning about flags that do not apply), sweeps and checkpoints all go through
//! [`Optimizer`]'s methods and [`Rule`]. Tests cover a new optimizer with no edit either: the
//! ones below check that it reads exactly the hyperparameters it lists, and `tests/kernels.rs`
//! runs the kernel of every optimizer in [`Optimizer::all`] against its CPU update.

mod adadelta;
mod adagrad;
mod adam;
mod adamw;
mod elementwise;
mod hyperparameters;
mod require;
mod rmsprop;
mod rule;
mod schedule;
mod sgd;

pub use adadelta::{Adadelta, AdadeltaCoefficients};
pub use adagrad::{Adagrad, AdagradCoefficients};
pub use adam::{Adam, AdamCoefficients};
pub use adamw::AdamW;
pub use elementwise::lerp;
pub use hyperparameters::Hyperparameters;
pub use rmsprop::{RmsProp, RmsPropCoefficients};
pub use rule::{Coefficients, MAX_COEFFICIENT_BYTES, MAX_STATE_SLOTS, Rule, StateSlot};
pub use schedule::{LrSchedule, Schedule};
pub use sgd::{Sgd, SgdCoefficients};

use crate::error::{Error, Result};

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

// The dispatch: every optimizer is listed here, once in each function.
impl Optimizer {
    /// Every optimizer, with PyTorch's defaults, in the order the command line lists them.
    pub fn all() -> Vec<Optimizer> {
        vec![
            Optimizer::Sgd(Sgd::default()),
            Optimizer::Adam(Adam::default()),
            Optimizer::AdamW(AdamW::default()),
            Optimizer::RmsProp(RmsProp::default()),
            Optimizer::Adagrad(Adagrad::default()),
            Optimizer::Adadelta(Adadelta::default()),
        ]
    }

    /// The config, as the [`Rule`] every optimizer implements.
    pub fn rule(&self) -> &dyn Rule {
        match self {
            Optimizer::Sgd(o) => o,
            Optimizer::Adam(o) => o,
            Optimizer::AdamW(o) => o,
            Optimizer::RmsProp(o) => o,
            Optimizer::Adagrad(o) => o,
            Optimizer::Adadelta(o) => o,
        }
    }

    /// The config, to change.
    fn rule_mut(&mut self) -> &mut dyn Rule {
        match self {
            Optimizer::Sgd(o) => o,
            Optimizer::Adam(o) => o,
            Optimizer::AdamW(o) => o,
            Optimizer::RmsProp(o) => o,
            Optimizer::Adagrad(o) => o,
            Optimizer::Adadelta(o) => o,
        }
    }
}

impl Optimizer {
    /// The optimizers' names on the command line, PyTorch's class names in lower case (`sgd`,
    /// `adamw`, ...), in the order of [`Optimizer::all`].
    pub fn names() -> Vec<String> {
        Optimizer::all()
            .iter()
            .map(|o| o.name().to_lowercase())
            .collect()
    }

    /// The optimizer whose PyTorch class name is `name` in any case (`adamw`, `AdamW`), with the
    /// hyperparameters `h` gives that it reads and PyTorch's defaults for the rest (those it
    /// does not read are [`Optimizer::ignored`]); an error for an unknown name or a value
    /// PyTorch refuses.
    pub fn from_name(name: &str, h: &Hyperparameters) -> Result<Optimizer> {
        let optimizer = Optimizer::all()
            .into_iter()
            .find(|o| o.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "there is no optimizer {name:?}; the optimizers are {}",
                    Optimizer::names().join(", ")
                ))
            })?;
        optimizer.with_hyperparameters(h)
    }

    /// The same optimizer with the hyperparameters `h` gives that it reads (the rest are
    /// [`Optimizer::ignored`]), checked as PyTorch's constructor checks them.
    pub fn with_hyperparameters(&self, h: &Hyperparameters) -> Result<Optimizer> {
        let mut o = *self;
        o.rule_mut().set(h);
        o.validate()?;
        Ok(o)
    }

    /// The hyperparameters `h` gives that this optimizer does not read, by field name, in the
    /// order of [`Hyperparameters::given`].
    pub fn ignored(&self, h: &Hyperparameters) -> Vec<&'static str> {
        let reads = self.rule().options();
        h.given()
            .into_iter()
            .filter(|name| !reads.contains(name))
            .collect()
    }

    /// PyTorch's class name.
    pub fn name(&self) -> &'static str {
        self.rule().name()
    }

    /// Checks every hyperparameter as PyTorch's constructor does.
    pub fn validate(&self) -> Result<()> {
        self.rule().validate()
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        self.rule().lr()
    }

    /// The same optimizer at learning rate `lr` (what a schedule sets for one step).
    pub fn with_lr(&self, lr: f64) -> Optimizer {
        let mut o = *self;
        o.rule_mut().set(&Hyperparameters {
            lr: Some(lr),
            ..Hyperparameters::default()
        });
        o
    }

    /// The same optimizer with momentum `momentum` (SGD's and RMSprop's `μ`); an error for the
    /// optimizers that have none.
    pub fn with_momentum(&self, momentum: f64) -> Result<Optimizer> {
        self.with_own(&Hyperparameters {
            momentum: Some(momentum),
            ..Hyperparameters::default()
        })
    }

    /// The same optimizer with weight decay `weight_decay` (every optimizer's `λ`).
    pub fn with_weight_decay(&self, weight_decay: f64) -> Result<Optimizer> {
        self.with_own(&Hyperparameters {
            weight_decay: Some(weight_decay),
            ..Hyperparameters::default()
        })
    }

    /// The state tensors these options need (unused ones, such as `max_exp_avg_sq` without
    /// amsgrad, are not allocated).
    pub fn state_slots(&self) -> Vec<StateSlot> {
        self.rule().state_slots()
    }

    /// The coefficients of update number `step` (1 for the first update).
    pub fn coefficients(&self, step: u64) -> Coefficients {
        self.rule().coefficients(step)
    }

    /// [`Optimizer::with_hyperparameters`], but an error naming the optimizers that have it when
    /// this one does not read a hyperparameter `h` gives.
    fn with_own(&self, h: &Hyperparameters) -> Result<Optimizer> {
        if let Some(name) = self.ignored(h).first() {
            let owners: Vec<&str> = Optimizer::all()
                .iter()
                .filter(|o| o.rule().options().contains(name))
                .map(Optimizer::name)
                .collect();
            let what = name.replace('_', " ");
            return Err(Error::Usage(format!(
                "{} has no {what}; {what} applies to {}",
                self.name(),
                listing(&owners)
            )));
        }
        self.with_hyperparameters(h)
    }
}

/// `a`, `a and b`, `a, b and c`, ...
fn listing(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every hyperparameter given once.
    fn every() -> Hyperparameters {
        Hyperparameters {
            lr: Some(0.5),
            weight_decay: Some(0.5),
            beta1: Some(0.5),
            beta2: Some(0.5),
            amsgrad: Some(true),
            momentum: Some(0.5),
            dampening: Some(0.5),
            nesterov: Some(true),
            alpha: Some(0.5),
            centered: Some(true),
            lr_decay: Some(0.5),
            initial_accumulator_value: Some(0.5),
            rho: Some(0.5),
            eps: Some(0.5),
        }
    }

    /// Hyperparameters giving only `name`, once with each of two values that any field taking
    /// it must notice: NaN (equal to nothing) or, for a flag, true and false.
    fn only(name: &str) -> [Hyperparameters; 2] {
        let none = Hyperparameters::default();
        let number = |set: fn(&mut Hyperparameters)| {
            let mut h = none;
            set(&mut h);
            [h, h]
        };
        let flag = |set: fn(&mut Hyperparameters, bool)| {
            let (mut on, mut off) = (none, none);
            set(&mut on, true);
            set(&mut off, false);
            [on, off]
        };
        match name {
            "lr" => number(|h| h.lr = Some(f64::NAN)),
            "weight_decay" => number(|h| h.weight_decay = Some(f64::NAN)),
            "beta1" => number(|h| h.beta1 = Some(f64::NAN)),
            "beta2" => number(|h| h.beta2 = Some(f64::NAN)),
            "amsgrad" => flag(|h, v| h.amsgrad = Some(v)),
            "momentum" => number(|h| h.momentum = Some(f64::NAN)),
            "dampening" => number(|h| h.dampening = Some(f64::NAN)),
            "nesterov" => flag(|h, v| h.nesterov = Some(v)),
            "alpha" => number(|h| h.alpha = Some(f64::NAN)),
            "centered" => flag(|h, v| h.centered = Some(v)),
            "lr_decay" => number(|h| h.lr_decay = Some(f64::NAN)),
            "initial_accumulator_value" => number(|h| h.initial_accumulator_value = Some(f64::NAN)),
            "rho" => number(|h| h.rho = Some(f64::NAN)),
            "eps" => number(|h| h.eps = Some(f64::NAN)),
            _ => panic!("the test does not know the hyperparameter {name}"),
        }
    }

    #[test]
    fn each_optimizer_reads_exactly_its_options() {
        for optimizer in Optimizer::all() {
            let options = optimizer.rule().options();
            for name in every().given() {
                let changed = only(name).iter().any(|h| {
                    let mut o = optimizer;
                    o.rule_mut().set(h);
                    o != optimizer
                });
                assert_eq!(
                    changed,
                    options.contains(&name),
                    "{} reads {name}: {changed}; its options {options:?}",
                    optimizer.name()
                );
            }
            for name in options {
                assert!(
                    every().given().contains(name),
                    "{name} is no hyperparameter"
                );
            }
        }
    }

    #[test]
    fn names_and_defaults() {
        assert_eq!(
            Optimizer::names(),
            ["sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta"]
        );
        for optimizer in Optimizer::all() {
            optimizer.validate().unwrap();
            let none = Hyperparameters::default();
            assert_eq!(
                Optimizer::from_name(optimizer.name(), &none).unwrap(),
                optimizer
            );
        }
        let adamw = Optimizer::from_name("adamw", &Hyperparameters::default()).unwrap();
        assert_eq!(adamw, Optimizer::AdamW(AdamW::default()));
        let error = Optimizer::from_name("lion", &Hyperparameters::default()).unwrap_err();
        assert!(error.to_string().contains("sgd, adam, adamw"), "{error}");
    }

    #[test]
    fn hyperparameters_build_and_report_what_is_ignored() {
        let h = Hyperparameters {
            lr: Some(0.1),
            momentum: Some(0.9),
            beta1: Some(0.8),
            eps: Some(1e-3),
            ..Hyperparameters::default()
        };
        let sgd = Optimizer::from_name("sgd", &h).unwrap();
        let expected = Sgd {
            lr: 0.1,
            momentum: 0.9,
            ..Sgd::default()
        };
        assert_eq!(sgd, Optimizer::Sgd(expected));
        assert_eq!(sgd.ignored(&h), ["beta1", "eps"]);
        assert_eq!(Optimizer::Adam(Adam::default()).ignored(&h), ["momentum"]);
        let refused = Hyperparameters {
            momentum: Some(-1.0),
            ..Hyperparameters::default()
        };
        assert!(Optimizer::from_name("SGD", &refused).is_err());
    }

    #[test]
    fn momentum_only_where_there_is_one() {
        let adam = Optimizer::Adam(Adam::default());
        let error = adam.with_momentum(0.9).unwrap_err().to_string();
        assert_eq!(
            error,
            "Adam has no momentum; momentum applies to SGD and RMSprop"
        );
        let sgd = Optimizer::Sgd(Sgd::default()).with_momentum(0.9).unwrap();
        assert_eq!(sgd.state_slots()[0].name, "momentum_buffer");
        let decayed = adam.with_weight_decay(0.1).unwrap();
        assert_eq!(decayed.with_lr(0.5).lr(), 0.5);
    }

    #[test]
    fn coefficients_are_the_typed_struct_bytes() {
        let typed = Sgd::default().coefficients(1).get::<SgdCoefficients>();
        assert_eq!(typed.first_step, 1);
        for optimizer in Optimizer::all() {
            let c = optimizer.coefficients(3);
            assert!(c.as_bytes().len() <= MAX_COEFFICIENT_BYTES);
            assert_eq!(c.as_bytes().len() % 16, 0, "{}", optimizer.name());
        }
        let adam = Optimizer::Adam(Adam::default()).coefficients(2);
        assert_eq!(
            adam.as_bytes(),
            bytemuck::bytes_of(&adam.get::<AdamCoefficients>())
        );
        assert_eq!(listing(&["a", "b", "c"]), "a, b and c");
    }
}
