//! One set of settings that builds whichever optimizer is chosen.

/// Any optimizer's hyperparameters, each optional: one set of settings (a command line's flags)
/// that builds whichever optimizer is chosen with
/// [`Optimizer::from_name`](super::Optimizer::from_name) or
/// [`Optimizer::with_hyperparameters`](super::Optimizer::with_hyperparameters). Each optimizer
/// takes those it reads (its
/// [`Rule::options`](super::Rule::options)) and ignores the rest
/// ([`Optimizer::ignored`](super::Optimizer::ignored)); one left out keeps the
/// optimizer's value, PyTorch's default for a new one.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Hyperparameters {
    /// Learning rate `γ`.
    pub lr: Option<f64>,
    /// Weight decay `λ`.
    pub weight_decay: Option<f64>,
    /// Decay `β₁` of the running mean of gradients.
    pub beta1: Option<f64>,
    /// Decay `β₂` of the running mean of squared gradients.
    pub beta2: Option<f64>,
    /// The AMSGrad variant: the running maximum of the second moment.
    pub amsgrad: Option<bool>,
    /// Momentum `μ`.
    pub momentum: Option<f64>,
    /// Dampening `τ` of momentum.
    pub dampening: Option<f64>,
    /// Nesterov momentum.
    pub nesterov: Option<bool>,
    /// Smoothing constant `α`.
    pub alpha: Option<f64>,
    /// The centered variant: normalise by the gradient's estimated variance.
    pub centered: Option<bool>,
    /// Learning-rate decay `η`.
    pub lr_decay: Option<f64>,
    /// The value the accumulated sum of squares starts at.
    pub initial_accumulator_value: Option<f64>,
    /// Decay `ρ` of running averages.
    pub rho: Option<f64>,
    /// `ε`, added to denominators for stability.
    pub eps: Option<f64>,
}

impl Hyperparameters {
    /// The names of the fields that hold a value, in the order of the fields.
    pub fn given(&self) -> Vec<&'static str> {
        let Hyperparameters {
            lr,
            weight_decay,
            beta1,
            beta2,
            amsgrad,
            momentum,
            dampening,
            nesterov,
            alpha,
            centered,
            lr_decay,
            initial_accumulator_value,
            rho,
            eps,
        } = self;
        [
            ("lr", lr.is_some()),
            ("weight_decay", weight_decay.is_some()),
            ("beta1", beta1.is_some()),
            ("beta2", beta2.is_some()),
            ("amsgrad", amsgrad.is_some()),
            ("momentum", momentum.is_some()),
            ("dampening", dampening.is_some()),
            ("nesterov", nesterov.is_some()),
            ("alpha", alpha.is_some()),
            ("centered", centered.is_some()),
            ("lr_decay", lr_decay.is_some()),
            (
                "initial_accumulator_value",
                initial_accumulator_value.is_some(),
            ),
            ("rho", rho.is_some()),
            ("eps", eps.is_some()),
        ]
        .into_iter()
        .filter(|&(_, given)| given)
        .map(|(name, _)| name)
        .collect()
    }
}
