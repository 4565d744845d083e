//! The optimizer flag group: `--optimizer`, a flag per hyperparameter, and the library's
//! [`Hyperparameters`] they give. A new optimizer changes nothing on the command line unless it
//! brings a hyperparameter that no optimizer had before: that one gets its flag and its line in
//! [`OptimizerArgs::hyperparameters`] here (and, if its flag's help lists the optimizers that
//! read it, a word there).

use clap::Args;
use clap::builder::PossibleValuesParser;
use downhill::Optimizer;
use downhill::optim::Hyperparameters;

/// The optimizer and its hyperparameters (those not given take PyTorch's defaults for it); the
/// learning rate is a group of its own.
#[derive(Args, Clone)]
pub struct OptimizerArgs {
    /// The optimizer; hyperparameters not given take PyTorch's defaults for it.
    #[arg(long, default_value = "adam", value_parser = names())]
    pub optimizer: String,
    /// Adam's and AdamW's decay of the running mean of gradients (default 0.9).
    #[arg(long, allow_negative_numbers = true)]
    pub beta1: Option<f64>,
    /// Adam's and AdamW's decay of the running mean of squared gradients (default 0.999).
    #[arg(long, allow_negative_numbers = true)]
    pub beta2: Option<f64>,
    /// The term added to denominators for stability (Adam, AdamW, RMSprop, Adagrad, AdaDelta;
    /// PyTorch's default for each).
    #[arg(long, allow_negative_numbers = true)]
    pub eps: Option<f64>,
    /// Weight decay (sweep and check: a list).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub weight_decay: Vec<f64>,
    /// Momentum of SGD and RMSprop (sweep and check: a list).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    pub momentum: Vec<f64>,
    /// SGD's dampening of momentum (default 0).
    #[arg(long, allow_negative_numbers = true)]
    pub dampening: Option<f64>,
    /// SGD with Nesterov momentum (needs --momentum above 0 and no dampening).
    #[arg(long)]
    pub nesterov: bool,
    /// RMSprop's smoothing constant.
    #[arg(long, allow_negative_numbers = true)]
    pub alpha: Option<f64>,
    /// Centered RMSprop: normalise by the gradient's estimated variance.
    #[arg(long)]
    pub centered: bool,
    /// Adam's and AdamW's AMSGrad variant (the running maximum of the second moment).
    #[arg(long)]
    pub amsgrad: bool,
    /// Adagrad's learning-rate decay.
    #[arg(long, allow_negative_numbers = true)]
    pub lr_decay: Option<f64>,
    /// Adagrad's initial accumulator value.
    #[arg(long, allow_negative_numbers = true)]
    pub initial_accumulator_value: Option<f64>,
    /// AdaDelta's decay of its running averages.
    #[arg(long, allow_negative_numbers = true)]
    pub rho: Option<f64>,
}

impl OptimizerArgs {
    /// The hyperparameters the flags give (of a list, its first value: a sweep's base), but the
    /// learning rate, which is a group of its own.
    pub fn hyperparameters(&self) -> Hyperparameters {
        Hyperparameters {
            lr: None,
            weight_decay: self.weight_decay.first().copied(),
            beta1: self.beta1,
            beta2: self.beta2,
            amsgrad: self.amsgrad.then_some(true),
            momentum: self.momentum.first().copied(),
            dampening: self.dampening,
            nesterov: self.nesterov.then_some(true),
            alpha: self.alpha,
            centered: self.centered.then_some(true),
            lr_decay: self.lr_decay,
            initial_accumulator_value: self.initial_accumulator_value,
            rho: self.rho,
            eps: self.eps,
        }
    }
}

/// `--optimizer`'s values: the library's optimizers, by PyTorch's class names in lower case.
fn names() -> PossibleValuesParser {
    PossibleValuesParser::new(Optimizer::names())
}
