//! The worked examples of gradient descent, as golden tests with exact values, on both engines.

mod common;

use common::gpu;
use downhill::optim::Sgd;
use downhill::{
    Activation, Batch, CpuEngine, Engine, GpuEngine, Loss, ModelSpec, Optimizer, Parameters, Setup,
    Targets,
};
use ndarray::{Array2, array};

/// The one-input, one-output linear model.
fn line() -> ModelSpec {
    ModelSpec::from_widths(&[1, 1], Activation::Identity, Activation::Identity).unwrap()
}

fn one_weight(w: f32, b: f32) -> Parameters {
    Parameters::from_values(&line(), [vec![w], vec![b]])
}

/// The weight and the bias of a one-weight model.
fn weight_and_bias(p: &Parameters) -> (f32, f32) {
    let [w, b] = p.named_tensors() else {
        panic!("a weight and a bias")
    };
    (w.values[0], b.values[0])
}

fn sgd(lr: f64) -> Optimizer {
    Optimizer::Sgd(Sgd {
        lr,
        ..Sgd::default()
    })
}

/// Both engines on the same setup and start.
fn engines(setup: &Setup, init: &Parameters, max_batch: usize) -> Vec<Box<dyn Engine>> {
    vec![
        Box::new(GpuEngine::new(&gpu(), setup.clone(), init, max_batch).unwrap()),
        Box::new(CpuEngine::new(setup.clone(), init).unwrap()),
    ]
}

/// One input, one weight, ReLU, squared error: x=2, y=5, w=3, b=1.
/// z = 3·2 + 1 = 7, loss (7 − 5)² = 4, dL/dw = 2·(7 − 5)·2 = 8, dL/db = 4;
/// SGD at lr 0.1 gives w = 2.2, b = 0.6, and then 2.2·2 + 0.6 = 5: loss 0.
#[test]
fn relu_neuron_single_step() {
    let setup = Setup {
        model: ModelSpec::from_widths(&[1, 1], Activation::Identity, Activation::Relu).unwrap(),
        loss: Loss::Mse,
        optimizer: sgd(0.1),
    };
    let x = array![[2.0f32]];
    let y = Targets::Dense(array![[5.0f32]]);
    let batch = Batch::new(x.view(), y.view());
    for mut engine in engines(&setup, &one_weight(3.0, 1.0), 1) {
        let name = engine.describe();
        engine.step(&batch).unwrap();
        assert_eq!(engine.last_loss().unwrap(), 4.0, "{name}");
        let g = engine.gradients(0).unwrap();
        assert_eq!(weight_and_bias(&g).0, 8.0, "{name}");
        assert_eq!(weight_and_bias(&g).1, 4.0, "{name}");
        let p = engine.parameters(0).unwrap();
        // f32 arithmetic: 3 − 0.1·8 and 1 − 0.1·4, exactly as the update computes them.
        assert_eq!(weight_and_bias(&p).0, 3.0f32 - 0.1f32 * 8.0, "{name}");
        assert_eq!(weight_and_bias(&p).1, 1.0f32 - 0.1f32 * 4.0, "{name}");
        assert!((weight_and_bias(&p).0 - 2.2).abs() < 1e-6, "{name}");
        assert!((weight_and_bias(&p).1 - 0.6).abs() < 1e-6, "{name}");
        engine.step(&batch).unwrap();
        assert!(
            engine.last_loss().unwrap() < 1e-10,
            "{name}: loss after the step"
        );
    }
}

/// Linear regression on X = [1..5], y = [2, 4, 5, 4, 5] from m = b = 0, full-batch gradient
/// descent on MSE at lr 0.01 for 1000 steps: equals the same iteration in f64 to f32
/// tolerance, and heads toward the least-squares line m = 0.6, b = 2.2.
#[test]
fn linear_regression_full_batch() {
    let xs = [1.0f64, 2.0, 3.0, 4.0, 5.0];
    let ys = [2.0f64, 4.0, 5.0, 4.0, 5.0];
    let (lr, steps) = (0.01, 1000);
    let (mut m, mut b) = (0.0f64, 0.0f64);
    let mut distance_at = Vec::new();
    for _ in 0..steps {
        let n = xs.len() as f64;
        let residuals: Vec<f64> = xs.iter().zip(&ys).map(|(x, y)| m * x + b - y).collect();
        let dm = 2.0 / n * residuals.iter().zip(&xs).map(|(r, x)| r * x).sum::<f64>();
        let db = 2.0 / n * residuals.iter().sum::<f64>();
        m -= lr * dm;
        b -= lr * db;
        distance_at.push(((m - 0.6).powi(2) + (b - 2.2).powi(2)).sqrt());
    }
    // The f64 iteration itself approaches the least-squares line.
    assert!(distance_at[steps - 1] < distance_at[99] && distance_at[99] < distance_at[0]);
    // After 1000 steps: m = 0.6177, b = 2.1361 (from m = 0.973, b = 0.854 at step 100).
    assert!(
        (m - 0.6).abs() < 0.02 && (b - 2.2).abs() < 0.07,
        "f64 m={m} b={b}"
    );

    let setup = Setup {
        model: line(),
        loss: Loss::Mse,
        optimizer: sgd(lr),
    };
    let x = Array2::from_shape_vec((5, 1), xs.iter().map(|&v| v as f32).collect()).unwrap();
    let y = Targets::Dense(
        Array2::from_shape_vec((5, 1), ys.iter().map(|&v| v as f32).collect()).unwrap(),
    );
    let batch = Batch::new(x.view(), y.view());
    for mut engine in engines(&setup, &one_weight(0.0, 0.0), 5) {
        let name = engine.describe();
        for _ in 0..steps {
            engine.step(&batch).unwrap();
        }
        let p = engine.parameters(0).unwrap();
        let (em, eb) = (
            f64::from(weight_and_bias(&p).0),
            f64::from(weight_and_bias(&p).1),
        );
        // 1000 f32 steps accumulate rounding of about 1000·ε relative to the values.
        assert!(
            (em - m).abs() < 1e-4,
            "{name}: m = {em}, f64 iteration gives {m}"
        );
        assert!(
            (eb - b).abs() < 1e-4,
            "{name}: b = {eb}, f64 iteration gives {b}"
        );
    }
}

/// y = a·10 from a = 0 toward the target 47 with loss ½(y − t)² at lr 0.005:
/// a = 2.35, 3.525, 4.1125, 4.40625 after steps 1 to 4.
///
/// A model with a bias needs the bias to stay at zero for this to be the one-weight problem:
/// the batch holds (x = 10, t = 47) and its mirror (x = −10, t = −47), whose bias gradients
/// cancel exactly. MSE over that pair has gradient 2·Σ(y − t)x/2 = 2·(10a − 47)·10, twice that
/// of ½(y − t)², so it runs at half the learning rate, 0.0025.
#[test]
fn single_weight_toward_47() {
    let setup = Setup {
        model: line(),
        loss: Loss::Mse,
        optimizer: sgd(0.0025),
    };
    let x = array![[10.0f32], [-10.0]];
    let y = Targets::Dense(array![[47.0f32], [-47.0]]);
    let batch = Batch::new(x.view(), y.view());
    let expected = [2.35f32, 3.525, 4.1125, 4.40625];
    for mut engine in engines(&setup, &one_weight(0.0, 0.0), 2) {
        let name = engine.describe();
        for (step, &a) in expected.iter().enumerate() {
            engine.step(&batch).unwrap();
            let p = engine.parameters(0).unwrap();
            let got = weight_and_bias(&p).0;
            assert!(
                (got - a).abs() <= 2e-6 * a,
                "{name}: step {} gives a = {got}, expected {a}",
                step + 1
            );
            assert_eq!(weight_and_bias(&p).1, 0.0, "{name}: the bias stays at zero");
        }
    }
}

/// AdaDelta with PyTorch's defaults (lr 1, ρ 0.9, ε 1e-6) on the ReLU neuron above (x = 2,
/// y = 5, w = 3, b = 1, gradients 8 and 4 at the first step). The first step moves each
/// parameter by about √ε·sign(g)/√(1 − ρ) = 3.16e-3, whatever the gradient's size: AdaDelta's
/// unit-free step. Expected values are the same two steps computed in f64:
///
/// ```text
/// v = ρv + (1−ρ)g²;  Δ = √(u+ε)/√(v+ε)·g;  u = ρu + (1−ρ)Δ²;  θ = θ − Δ
/// step 1: w = 2.9968377225868847, b = 0.9968377233280429
/// step 2: w = 2.9936006116390796, b = 0.9936006131608999
/// ```
#[test]
fn adadelta_unit_free_steps() {
    let setup = Setup {
        model: ModelSpec::from_widths(&[1, 1], Activation::Identity, Activation::Relu).unwrap(),
        loss: Loss::Mse,
        optimizer: Optimizer::Adadelta(downhill::optim::Adadelta::default()),
    };
    let x = array![[2.0f32]];
    let y = Targets::Dense(array![[5.0f32]]);
    let batch = Batch::new(x.view(), y.view());
    let expected = [
        (2.996_837_722_586_884_7, 0.996_837_723_328_042_9),
        (2.993_600_611_639_079_6, 0.993_600_613_160_899_9),
    ];
    for mut engine in engines(&setup, &one_weight(3.0, 1.0), 1) {
        let name = engine.describe();
        for (step, (w, b)) in expected.iter().enumerate() {
            engine.step(&batch).unwrap();
            let p = engine.parameters(0).unwrap();
            let (gw, gb) = (weight_and_bias(&p).0, weight_and_bias(&p).1);
            // f32 rounding of a step of 3e-3 on a parameter near 3: a few ULP of 3.
            assert!(
                (f64::from(gw) - w).abs() < 1e-6,
                "{name} step {step}: w {gw}"
            );
            assert!(
                (f64::from(gb) - b).abs() < 1e-6,
                "{name} step {step}: b {gb}"
            );
        }
        let state = engine.optimizer_state(0).unwrap();
        let names: Vec<&str> = state.slots.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["square_avg", "acc_delta"], "{name}");
    }
}
