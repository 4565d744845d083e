//! The optimizer that train's flags describe, with PyTorch's defaults for what they leave out.

use downhill::optim::Hyperparameters;
use downhill::{Optimizer, Result};

use super::args::OptimizerArgs;
use crate::cli::output::errln;

/// The optimizer the flags describe, with PyTorch's defaults for what they leave out (and the
/// first value of a list: a sweep's base). Flags that do not apply to the chosen optimizer are
/// ignored with a warning, so one script can pass every hyperparameter.
pub fn optimizer(a: &OptimizerArgs, lr: &[f64], quiet: bool) -> Result<Optimizer> {
    let given = Hyperparameters {
        lr: lr.first().copied(),
        ..a.hyperparameters()
    };
    let defaults = Optimizer::from_name(&a.optimizer, &Hyperparameters::default())?;
    let ignored: Vec<String> = defaults
        .ignored(&given)
        .iter()
        .map(|name| format!("--{}", name.replace('_', "-")))
        .collect();
    if !ignored.is_empty() && !quiet {
        errln!(
            "warning: {} {} not apply to {} and {} ignored",
            ignored.join(", "),
            if ignored.len() == 1 { "does" } else { "do" },
            capitalised(&a.optimizer),
            if ignored.len() == 1 { "is" } else { "are" },
        );
    }
    defaults.with_hyperparameters(&given)
}

/// `--optimizer`'s value with a capital first letter (`Adam`, `Adamw`, `Rmsprop`): how the
/// warning has always named the optimizer.
fn capitalised(name: &str) -> String {
    let mut chars = name.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}
