//! The CPU engine's own machinery: its matrix products and optimizer updates are split over
//! threads and chunks, and neither split may change a bit.

mod common;

use common::{random, targets};
use downhill::optim::{Adam, Sgd};
use downhill::{
    Activation, Batch, CpuEngine, Engine, Loss, ModelSpec, Optimizer, Parameters, Setup, Targets,
};
use ndarray::{Array2, ArrayView2};

/// A model whose first weight (300 × 250 = 75 000 values) spans several update chunks, the
/// last one partial.
fn setup(optimizer: Optimizer) -> Setup {
    Setup {
        model: ModelSpec::from_widths(&[250, 300, 3], Activation::Relu, Activation::Identity)
            .unwrap(),
        loss: Loss::CrossEntropy,
        optimizer,
    }
}

fn batch_data(seed: u64) -> (Array2<f32>, Targets) {
    (
        random(16, 250, 1.0, seed),
        targets(Loss::CrossEntropy, 16, 3, seed + 1),
    )
}

fn bits(p: &Parameters) -> Vec<u32> {
    p.named_tensors()
        .iter()
        .flat_map(|t| t.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        .collect()
}

/// Three Adam steps on a pool of `threads` threads; the parameters after them.
fn train_on(threads: usize) -> Parameters {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let s = setup(Optimizer::Adam(Adam {
            lr: 0.01,
            ..Adam::default()
        }));
        let mut engine = CpuEngine::new(s.clone(), &Parameters::init(&s.model, 4)).unwrap();
        for seed in 0..3 {
            let (x, y) = batch_data(10 * seed);
            engine.step(&Batch::new(x.view(), y.view())).unwrap();
        }
        engine.parameters(0).unwrap()
    })
}

#[test]
fn results_do_not_depend_on_the_number_of_threads() {
    let one = bits(&train_on(1));
    assert_eq!(one, bits(&train_on(2)), "1 thread against 2");
    assert_eq!(one, bits(&train_on(3)), "1 thread against 3");
}

#[test]
fn every_chunk_of_a_tensor_is_updated_with_its_own_state() {
    // SGD with momentum μ: b₁ = g₁, p₁ = p₀ − γ·b₁; b₂ = μ·b₁ + g₂, p₂ = p₁ − γ·b₂.
    let (lr, momentum) = (0.05f32, 0.9f32);
    let s = setup(Optimizer::Sgd(Sgd {
        lr: lr.into(),
        momentum: momentum.into(),
        ..Sgd::default()
    }));
    let p0 = Parameters::init(&s.model, 8);
    let mut engine = CpuEngine::new(s, &p0).unwrap();
    let mut expected = p0.named_tensors().to_vec();
    let mut buffers: Vec<Vec<f32>> = expected.iter().map(|t| vec![0.0; t.values.len()]).collect();
    for step in 0..2 {
        let (x, y) = batch_data(step);
        engine.step(&Batch::new(x.view(), y.view())).unwrap();
        let grads = engine.gradients(0).unwrap();
        for ((want, b), g) in expected
            .iter_mut()
            .zip(&mut buffers)
            .zip(grads.named_tensors())
        {
            for ((p, b), &g) in want.values.iter_mut().zip(b.iter_mut()).zip(&g.values) {
                *b = if step == 0 {
                    g
                } else {
                    momentum * *b + 1.0 * g
                };
                *p -= lr * *b;
            }
        }
    }
    let got = engine.parameters(0).unwrap();
    for (want, got) in expected.iter().zip(got.named_tensors()) {
        let wrong = want
            .values
            .iter()
            .zip(&got.values)
            .position(|(w, g)| w.to_bits() != g.to_bits());
        assert_eq!(wrong, None, "{} differs at that index", want.name);
    }
}

/// `C = A·B` by the definition, in f64.
fn naive(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Array2<f64> {
    Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
        a.row(i)
            .iter()
            .zip(b.column(j))
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum()
    })
}

#[test]
fn products_of_transposed_and_strided_views_match_the_definition() {
    let a = random(37, 70, 1.0, 1);
    let b = random(70, 45, 1.0, 2);
    let at = a.t().to_owned();
    let bt = b.t().to_owned();
    let a_wide = random(37, 140, 1.0, 1);
    let cases: [(&str, ArrayView2<'_, f32>, ArrayView2<'_, f32>); 4] = [
        ("A·B", a.view(), b.view()),
        ("(Aᵀ)ᵀ·B", at.t(), b.view()),
        ("A·(Bᵀ)ᵀ", a.view(), bt.t()),
        (
            "every other column",
            a_wide.slice(ndarray::s![.., ..;2]),
            b.view(),
        ),
    ];
    for (what, x, y) in cases {
        let got = downhill::cpu::product(x, y);
        let want = naive(x, y);
        assert_eq!(got.dim(), want.dim(), "{what}");
        for ((i, j), &w) in want.indexed_iter() {
            let g = f64::from(got[[i, j]]);
            assert!(
                (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                "{what}[{i},{j}]: {g} against {w}"
            );
        }
    }
}
