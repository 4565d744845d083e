//! The CPU reference's gradients against central finite differences, for every loss and every
//! activation (in a hidden layer and in the output layer), with layer norms, batch norms (their
//! training pass, on the batch's statistics) and dropout (one fixed set of masks).

mod common;

use common::{ACTIVATIONS, random, targets};
use downhill::cpu::{Activations, backward, forward, forward_training, loss_and_gradient};
use downhill::model::MaskKey;
use downhill::{Activation, Layer, Loss, ModelSpec, Norm, Parameters, Targets};
use ndarray::Array2;

/// The forward pass of a training step (batch statistics, and one fixed set of dropout masks),
/// which the gradients are of.
fn training_forward(model: &ModelSpec, params: &Parameters, x: &Array2<f32>) -> Activations {
    let key = MaskKey {
        seed: 5,
        step: 0,
        rows: None,
    };
    forward_training(model, params, x.view(), &key)
}

fn loss_at(
    model: &ModelSpec,
    params: &Parameters,
    x: &Array2<f32>,
    y: &Targets,
    loss: Loss,
) -> f32 {
    let acts = training_forward(model, params, x);
    loss_and_gradient(loss, acts.post.last().unwrap().view(), y.view()).0
}

/// Parameters and data, from the first seed at or after `seed`, where every pre-activation of a
/// ReLU-like layer is at least 0.05 from the kink at zero: ten times the difference step, so both
/// sides of every difference quotient lie on the same linear piece.
fn differentiable_point(
    model: &ModelSpec,
    loss: Loss,
    seed: u64,
) -> (Parameters, Array2<f32>, Targets) {
    let kinked = |a: Activation| matches!(a, Activation::Relu | Activation::LeakyRelu { .. });
    for s in seed..seed + 1000 {
        let params = Parameters::init(model, s);
        let x = random(6, model.inputs(), 2.5, s + 1);
        let acts = training_forward(model, &params, &x);
        let clear = model
            .layers()
            .iter()
            .zip(&acts.pre)
            .filter(|(layer, _)| kinked(layer.activation()))
            .all(|(_, z)| z.iter().all(|v| v.abs() > 0.05));
        if clear {
            return (params, x, targets(loss, 6, model.outputs(), s + 2));
        }
    }
    panic!(
        "no seed in {seed}..{} keeps pre-activations away from the kink",
        seed + 1000
    );
}

/// Every parameter's analytic gradient equals the difference quotient
/// `D(h) = (L(θ + h) − L(θ − h)) / 2h`, extrapolated (Richardson) as `(4·D(h/2) − D(h)) / 3`.
///
/// `D(h)` alone is off by `h²·L'''/6`, which a layer norm's curvature (its rows' variance in
/// the denominator) makes visible at `h = 5e-3`; the extrapolation cancels that term, leaving
/// `O(h⁴)` and f32 rounding of about 3·ε·|L|/h ≈ 3e-5·|L|, so the bound is abs 3e-4 plus rel
/// 3e-3. Inputs span ±2.5 so that the higher-order terms of GELU's and sigmoid's derivatives
/// matter at that bound.
fn check(model: &ModelSpec, loss: Loss, seed: u64) {
    let h = 5e-3f32;
    let (params, x, y) = differentiable_point(model, loss, seed);
    let acts = training_forward(model, &params, &x);
    let (_, output_grad) = loss_and_gradient(loss, acts.post.last().unwrap().view(), y.view());
    let grads = backward(model, &params, x.view(), &acts, output_grad);
    for (p, g) in params.named_tensors().iter().zip(grads.named_tensors()) {
        for i in 0..p.values.len() {
            let nudged = |delta: f32| {
                let mut q = params.clone();
                q.tensor_mut(&p.name).unwrap()[i] += delta;
                loss_at(model, &q, &x, &y, loss)
            };
            let quotient = |h: f32| (nudged(h) - nudged(-h)) / (2.0 * h);
            let numeric = (4.0 * quotient(h / 2.0) - quotient(h)) / 3.0;
            let analytic = g.values[i];
            assert!(
                (numeric - analytic).abs() <= 3e-4 + 3e-3 * analytic.abs(),
                "{}[{i}] with {} and {:?}: analytic {analytic} vs numeric {numeric}",
                p.name,
                loss.name(),
                model
                    .layers()
                    .iter()
                    .map(|l| l.activation().name())
                    .collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn every_loss_and_hidden_activation() {
    for loss in [Loss::Mse, Loss::CrossEntropy, Loss::BceWithLogits] {
        for (k, activation) in ACTIVATIONS.into_iter().enumerate() {
            let model =
                ModelSpec::from_widths(&[4, 5, 3], activation, Activation::Identity).unwrap();
            check(&model, loss, 40 + k as u64);
        }
    }
}

#[test]
fn every_loss_and_output_activation() {
    for loss in [Loss::Mse, Loss::CrossEntropy, Loss::BceWithLogits] {
        for (k, activation) in ACTIVATIONS.into_iter().enumerate() {
            let model = ModelSpec::new(vec![
                Layer::dense(4, 5, Activation::Tanh),
                Layer::dense(5, 3, activation),
            ])
            .unwrap();
            check(&model, loss, 60 + k as u64);
        }
    }
}

#[test]
fn layer_norm_with_every_loss_and_hidden_activation() {
    for loss in [Loss::Mse, Loss::CrossEntropy, Loss::BceWithLogits] {
        for (k, activation) in ACTIVATIONS.into_iter().enumerate() {
            let model = ModelSpec::mlp(
                &[4, 5, 6, 3],
                activation,
                Activation::Identity,
                Norm::Layer { eps: 1e-5 },
                0.0,
            )
            .unwrap();
            check(&model, loss, 80 + k as u64);
        }
    }
}

#[test]
fn batch_norm_and_dropout_with_every_loss_and_hidden_activation() {
    let norm = Norm::Batch {
        eps: 1e-5,
        momentum: 0.1,
    };
    for loss in [Loss::Mse, Loss::CrossEntropy, Loss::BceWithLogits] {
        for (k, activation) in ACTIVATIONS.into_iter().enumerate() {
            for dropout in [0.0, 0.3] {
                let model = ModelSpec::mlp(
                    &[4, 5, 6, 3],
                    activation,
                    Activation::Identity,
                    norm,
                    dropout,
                )
                .unwrap();
                check(&model, loss, 120 + k as u64);
            }
        }
    }
}

#[test]
fn cross_entropy_with_soft_targets() {
    let model = ModelSpec::from_widths(&[4, 5, 3], Activation::Gelu, Activation::Identity).unwrap();
    let params = Parameters::init(&model, 7);
    let x = random(6, 4, 1.0, 8);
    let mut soft = random(6, 3, 1.0, 9).mapv(f32::abs);
    for mut row in soft.rows_mut() {
        let total = row.sum();
        row /= total;
    }
    let y = Targets::Dense(soft);
    let acts = forward(&model, &params, x.view());
    let (_, output_grad) = loss_and_gradient(Loss::CrossEntropy, acts.post[1].view(), y.view());
    let grads = backward(&model, &params, x.view(), &acts, output_grad);
    let h = 5e-3;
    for i in 0..3 {
        let mut up = params.clone();
        up.tensor_mut("layers.1.bias").unwrap()[i] += h;
        let mut down = params.clone();
        down.tensor_mut("layers.1.bias").unwrap()[i] -= h;
        let numeric = (loss_at(&model, &up, &x, &y, Loss::CrossEntropy)
            - loss_at(&model, &down, &x, &y, Loss::CrossEntropy))
            / (2.0 * h);
        let analytic = grads.tensor("layers.1.bias").unwrap().values[i];
        assert!(
            (numeric - analytic).abs() <= 3e-4 + 3e-3 * analytic.abs(),
            "bias[{i}]: {analytic} vs {numeric}"
        );
    }
}
