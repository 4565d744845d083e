//! Twenty-step trajectories: for every optimizer and its main option combinations, the GPU
//! engine's losses (every step) and parameters (at the end) equal the CPU reference's within
//! rel 1e-4 / abs 1e-5, on MLPs (with and without layer norms, batch norms and dropout) and on
//! linear models, with batches of changing size.

mod common;

use common::{gpu, random, run_both_loosening, targets};
use downhill::optim::{Adadelta, Adagrad, Adam, AdamW, RmsProp, Sgd};
use downhill::{
    Activation, Layer, Loss, ModelSpec, Norm, Optimizer, Parameters, Setup, Targets, Tolerance,
};
use ndarray::Array2;

const STEPS: usize = 20;

/// The optimizer configurations every trajectory runs: defaults and each main option.
fn optimizers() -> Vec<Optimizer> {
    let sgd = Sgd {
        lr: 0.05,
        ..Sgd::default()
    };
    let adam = Adam {
        lr: 0.01,
        ..Adam::default()
    };
    let rmsprop = RmsProp {
        lr: 0.005,
        ..RmsProp::default()
    };
    let adagrad = Adagrad {
        lr: 0.05,
        ..Adagrad::default()
    };
    vec![
        Optimizer::Sgd(sgd),
        Optimizer::Sgd(Sgd {
            momentum: 0.9,
            ..sgd
        }),
        Optimizer::Sgd(Sgd {
            momentum: 0.9,
            dampening: 0.3,
            weight_decay: 0.01,
            ..sgd
        }),
        Optimizer::Sgd(Sgd {
            momentum: 0.9,
            nesterov: true,
            weight_decay: 0.01,
            ..sgd
        }),
        Optimizer::Adam(adam),
        Optimizer::Adam(Adam {
            weight_decay: 0.05,
            amsgrad: true,
            ..adam
        }),
        // A large ε makes its place in the denominator (after the bias-corrected root) visible.
        Optimizer::Adam(Adam {
            eps: 0.1,
            beta1: 0.5,
            beta2: 0.9,
            ..adam
        }),
        Optimizer::AdamW(AdamW {
            lr: 0.01,
            ..AdamW::default()
        }),
        Optimizer::AdamW(AdamW {
            lr: 0.01,
            weight_decay: 0.1,
            amsgrad: true,
            ..AdamW::default()
        }),
        Optimizer::RmsProp(rmsprop),
        Optimizer::RmsProp(RmsProp {
            momentum: 0.9,
            weight_decay: 0.01,
            ..rmsprop
        }),
        Optimizer::RmsProp(RmsProp {
            centered: true,
            momentum: 0.5,
            eps: 0.1,
            ..rmsprop
        }),
        Optimizer::Adagrad(adagrad),
        Optimizer::Adagrad(Adagrad {
            lr_decay: 0.05,
            weight_decay: 0.01,
            initial_accumulator_value: 0.1,
            eps: 0.1,
            ..adagrad
        }),
        Optimizer::Adadelta(Adadelta::default()),
        // A large ε and a weight decay make their places in the update visible.
        Optimizer::Adadelta(Adadelta {
            lr: 0.5,
            rho: 0.5,
            eps: 0.1,
            weight_decay: 0.01,
        }),
    ]
}

/// Three batches of 24, 24 and 11 rows (a partial last batch), seeded.
fn batches(inputs: usize, outputs: usize, loss: Loss, seed: u64) -> Vec<(Array2<f32>, Targets)> {
    [24, 24, 11]
        .iter()
        .enumerate()
        .map(|(i, &rows)| {
            let s = seed + 10 * i as u64;
            (
                random(rows, inputs, 1.0, s),
                targets(loss, rows, outputs, s + 1),
            )
        })
        .collect()
}

fn mlp(hidden: [Activation; 2]) -> ModelSpec {
    let layer = Layer::dense;
    ModelSpec::new(vec![
        layer(13, 17, hidden[0]),
        layer(17, 9, hidden[1]),
        layer(9, 3, Activation::Identity),
    ])
    .unwrap()
}

/// Every optimizer configuration, 20 steps each, on `model` with `loss` from a seeded start.
fn every_optimizer(model: ModelSpec, loss: Loss, seed: u64) {
    every_optimizer_of(optimizers(), model, loss, seed);
}

/// The configurations of [`optimizers`] with every ε at least `floor`.
///
/// Dropout zeroes many of a unit's rows, so some gradients cancel to rounding noise (2.6e-7,
/// 0.5% apart between the engines, in the tanh run below); Adam's, RMSprop's and Adagrad's
/// first steps, `g / (√v + ε)` with a tiny ε, turn that noise into a learning-rate-sized step
/// whose size depends on it. An ε of 1e-4 keeps such a step proportional to the gradient, and
/// everything else is compared at the usual bound.
fn optimizers_with_eps_at_least(floor: f64) -> Vec<Optimizer> {
    optimizers()
        .into_iter()
        .map(|optimizer| match optimizer {
            Optimizer::Adam(a) => Optimizer::Adam(Adam {
                eps: a.eps.max(floor),
                ..a
            }),
            Optimizer::AdamW(a) => Optimizer::AdamW(AdamW {
                eps: a.eps.max(floor),
                ..a
            }),
            Optimizer::RmsProp(r) => Optimizer::RmsProp(RmsProp {
                eps: r.eps.max(floor),
                ..r
            }),
            Optimizer::Adagrad(a) => Optimizer::Adagrad(Adagrad {
                eps: a.eps.max(floor),
                ..a
            }),
            Optimizer::Adadelta(a) => Optimizer::Adadelta(Adadelta {
                eps: a.eps.max(floor),
                ..a
            }),
            other => other,
        })
        .collect()
}

/// Each of `optimizers`, 20 steps, on `model` with `loss` from a seeded start.
fn every_optimizer_of(optimizers: Vec<Optimizer>, model: ModelSpec, loss: Loss, seed: u64) {
    every_optimizer_loosening(optimizers, model, loss, seed, (&[], Tolerance::default()));
}

/// [`every_optimizer_of`] with the tensors named in `loosened` compared within `loose`.
fn every_optimizer_loosening(
    optimizers: Vec<Optimizer>,
    model: ModelSpec,
    loss: Loss,
    seed: u64,
    (loosened, loose): (&[String], Tolerance),
) {
    let ctx = gpu();
    let init = Parameters::init(&model, seed);
    let data = batches(model.inputs(), model.outputs(), loss, 100 * seed);
    for optimizer in optimizers {
        let setup = Setup {
            model: model.clone(),
            loss,
            optimizer,
        };
        run_both_loosening(
            &ctx,
            &setup,
            &init,
            &data,
            STEPS,
            (Tolerance::default(), loosened, loose),
        );
    }
}

#[test]
fn mlp_13_17_9_3_relu_tanh_cross_entropy() {
    every_optimizer(
        mlp([Activation::Relu, Activation::Tanh]),
        Loss::CrossEntropy,
        1,
    );
}

#[test]
fn mlp_13_17_9_3_sigmoid_gelu_mse() {
    every_optimizer(mlp([Activation::Sigmoid, Activation::Gelu]), Loss::Mse, 2);
}

#[test]
fn mlp_13_17_9_3_leaky_relu_tanh_bce() {
    every_optimizer(
        mlp([Activation::LeakyRelu { slope: 0.1 }, Activation::Tanh]),
        Loss::BceWithLogits,
        3,
    );
}

/// The 13-17-9-3 MLP with a layer norm after each hidden `Linear`.
fn normed_mlp(hidden: Activation) -> ModelSpec {
    ModelSpec::mlp(
        &[13, 17, 9, 3],
        hidden,
        Activation::Identity,
        Norm::Layer { eps: 1e-5 },
        0.0,
    )
    .unwrap()
}

#[test]
fn mlp_13_17_9_3_layer_norm_relu_cross_entropy() {
    every_optimizer(normed_mlp(Activation::Relu), Loss::CrossEntropy, 6);
}

#[test]
fn mlp_13_17_9_3_layer_norm_gelu_mse() {
    every_optimizer(normed_mlp(Activation::Gelu), Loss::Mse, 7);
}

/// The 13-17-9-3 MLP with dropout after each hidden activation (and layer norms before them).
fn dropout_mlp(hidden: Activation, norm: Norm) -> ModelSpec {
    ModelSpec::mlp(&[13, 17, 9, 3], hidden, Activation::Identity, norm, 0.3).unwrap()
}

/// Dropout draws the same masks on both engines: the trajectories agree step by step (with
/// every ε at least 1e-4: [`optimizers_with_eps_at_least`] says why).
#[test]
fn mlp_13_17_9_3_dropout_tanh_cross_entropy() {
    every_optimizer_of(
        optimizers_with_eps_at_least(1e-4),
        dropout_mlp(Activation::Tanh, Norm::None),
        Loss::CrossEntropy,
        8,
    );
}

#[test]
fn mlp_13_17_9_3_layer_norm_and_dropout_relu_mse() {
    every_optimizer_of(
        optimizers_with_eps_at_least(1e-4),
        dropout_mlp(Activation::Relu, Norm::Layer { eps: 1e-5 }),
        Loss::Mse,
        9,
    );
}

/// The 13-17-9-3 MLP with a batch norm after each hidden `Linear`.
fn batch_normed_mlp(hidden: Activation) -> ModelSpec {
    let norm = Norm::Batch {
        eps: 1e-5,
        momentum: 0.1,
    };
    ModelSpec::mlp(&[13, 17, 9, 3], hidden, Activation::Identity, norm, 0.0).unwrap()
}

/// Every optimizer configuration on a batch-normed `model`, 20 steps each.
///
/// A `Linear` followed by a batch norm keeps its bias, whose gradient is zero in exact
/// arithmetic and rounding noise in f32 (the norm takes the bias's shift back out); Adam's,
/// RMSprop's and Adagrad's `g / (√v + ε)` turn that noise into learning-rate-sized steps that
/// differ between the engines. So these runs take every ε at least 1e-4, and compare those
/// biases, and the running means that follow them, within abs 1e-3 (the bias moves the loss not
/// at all); every loss and every other tensor, the running variances included, at the usual
/// bound.
fn every_optimizer_batch_normed(model: ModelSpec, loss: Loss, seed: u64) {
    let loosened = model.free_tensors();
    let loose = Tolerance {
        rel: 1e-4,
        abs: 1e-3,
    };
    every_optimizer_loosening(
        optimizers_with_eps_at_least(1e-4),
        model,
        loss,
        seed,
        (&loosened, loose),
    );
}

#[test]
fn mlp_13_17_9_3_batch_norm_relu_cross_entropy() {
    every_optimizer_batch_normed(batch_normed_mlp(Activation::Relu), Loss::CrossEntropy, 10);
}

#[test]
fn mlp_13_17_9_3_batch_norm_tanh_mse() {
    every_optimizer_batch_normed(batch_normed_mlp(Activation::Tanh), Loss::Mse, 11);
}

#[test]
fn linear_regression_mse() {
    let model =
        ModelSpec::from_widths(&[13, 1], Activation::Identity, Activation::Identity).unwrap();
    every_optimizer(model, Loss::Mse, 4);
}

#[test]
fn logistic_regression_cross_entropy() {
    let model =
        ModelSpec::from_widths(&[13, 4], Activation::Identity, Activation::Identity).unwrap();
    every_optimizer(model, Loss::CrossEntropy, 5);
}
