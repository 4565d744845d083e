//! The optimizer that train's flags describe, with PyTorch's defaults for what they leave out.

use downhill::optim::{Adadelta, Adagrad, Adam, AdamW, RmsProp, Sgd};
use downhill::{Optimizer, Result};

use super::args::{OptimizerArgs, OptimizerChoice};
use crate::cli::output::errln;

/// The optimizer the flags describe, with PyTorch's defaults for what they leave out (and the
/// first value of a list: a sweep's base). Flags that do not apply to the chosen optimizer are
/// ignored with a warning, so one script can pass every hyperparameter.
pub fn optimizer(a: &OptimizerArgs, lr: &[f64], quiet: bool) -> Result<Optimizer> {
    let lr = lr.first().copied();
    let momentum = a.momentum.first().copied();
    let weight_decay = a.weight_decay.first().copied();
    let used: &[(&str, bool)] = &[
        ("--beta1", a.beta1.is_some()),
        ("--beta2", a.beta2.is_some()),
        ("--amsgrad", a.amsgrad),
        ("--momentum", momentum.is_some()),
        ("--dampening", a.dampening.is_some()),
        ("--nesterov", a.nesterov),
        ("--alpha", a.alpha.is_some()),
        ("--centered", a.centered),
        ("--lr-decay", a.lr_decay.is_some()),
        (
            "--initial-accumulator-value",
            a.initial_accumulator_value.is_some(),
        ),
        ("--rho", a.rho.is_some()),
    ];
    let allowed: &[&str] = match a.optimizer {
        OptimizerChoice::Sgd => &["--momentum", "--dampening", "--nesterov"],
        OptimizerChoice::Adam | OptimizerChoice::Adamw => &["--beta1", "--beta2", "--amsgrad"],
        OptimizerChoice::Rmsprop => &["--alpha", "--centered", "--momentum"],
        OptimizerChoice::Adagrad => &["--lr-decay", "--initial-accumulator-value"],
        OptimizerChoice::Adadelta => &["--rho"],
    };
    let mut ignored: Vec<&str> = used
        .iter()
        .filter(|(flag, on)| *on && !allowed.contains(flag))
        .map(|(f, _)| *f)
        .collect();
    if a.optimizer == OptimizerChoice::Sgd && a.eps.is_some() {
        ignored.push("--eps");
    }
    if !ignored.is_empty() && !quiet {
        errln!(
            "warning: {} {} not apply to {:?} and {} ignored",
            ignored.join(", "),
            if ignored.len() == 1 { "does" } else { "do" },
            a.optimizer,
            if ignored.len() == 1 { "is" } else { "are" },
        );
    }
    let o = match a.optimizer {
        OptimizerChoice::Sgd => {
            let d = Sgd::default();
            Optimizer::Sgd(Sgd {
                lr: lr.unwrap_or(d.lr),
                momentum: momentum.unwrap_or(d.momentum),
                dampening: a.dampening.unwrap_or(d.dampening),
                weight_decay: weight_decay.unwrap_or(d.weight_decay),
                nesterov: a.nesterov,
            })
        }
        OptimizerChoice::Adam => {
            let d = Adam::default();
            Optimizer::Adam(Adam {
                lr: lr.unwrap_or(d.lr),
                beta1: a.beta1.unwrap_or(d.beta1),
                beta2: a.beta2.unwrap_or(d.beta2),
                eps: a.eps.unwrap_or(d.eps),
                weight_decay: weight_decay.unwrap_or(d.weight_decay),
                amsgrad: a.amsgrad,
            })
        }
        OptimizerChoice::Adamw => {
            let d = AdamW::default();
            Optimizer::AdamW(AdamW {
                lr: lr.unwrap_or(d.lr),
                beta1: a.beta1.unwrap_or(d.beta1),
                beta2: a.beta2.unwrap_or(d.beta2),
                eps: a.eps.unwrap_or(d.eps),
                weight_decay: weight_decay.unwrap_or(d.weight_decay),
                amsgrad: a.amsgrad,
            })
        }
        OptimizerChoice::Rmsprop => {
            let d = RmsProp::default();
            Optimizer::RmsProp(RmsProp {
                lr: lr.unwrap_or(d.lr),
                alpha: a.alpha.unwrap_or(d.alpha),
                eps: a.eps.unwrap_or(d.eps),
                weight_decay: weight_decay.unwrap_or(d.weight_decay),
                momentum: momentum.unwrap_or(d.momentum),
                centered: a.centered,
            })
        }
        OptimizerChoice::Adagrad => {
            let d = Adagrad::default();
            Optimizer::Adagrad(Adagrad {
                lr: lr.unwrap_or(d.lr),
                lr_decay: a.lr_decay.unwrap_or(d.lr_decay),
                weight_decay: weight_decay.unwrap_or(d.weight_decay),
                initial_accumulator_value: a
                    .initial_accumulator_value
                    .unwrap_or(d.initial_accumulator_value),
                eps: a.eps.unwrap_or(d.eps),
            })
        }
        OptimizerChoice::Adadelta => {
            let d = Adadelta::default();
            Optimizer::Adadelta(Adadelta {
                lr: lr.unwrap_or(d.lr),
                rho: a.rho.unwrap_or(d.rho),
                eps: a.eps.unwrap_or(d.eps),
                weight_decay: weight_decay.unwrap_or(d.weight_decay),
            })
        }
    };
    o.validate()?;
    Ok(o)
}
