//! Each GPU kernel against the CPU reference, on shapes that are not multiples of the
//! 64×64×16 tile (1, 3, 17, 65, 257) as well as ones that are.

mod common;

use common::{ACTIVATIONS, assert_close, gpu, random, targets};
use downhill::gpu::{Epilogue, Gemm, MatmulTile, MatmulVariant};
use downhill::optim::{Adagrad, Adam, AdamW, Hyperparameters, RmsProp, Sgd};
use downhill::{
    Activation, Batch, CpuEngine, Engine, GpuEngine, Layer, Loss, ModelSpec, Optimizer, Parameters,
    Setup, Tolerance,
};
use ndarray::{Array1, Array2};

/// (M, N, K) triples mixing the awkward sizes.
const SHAPES: [(usize, usize, usize); 9] = [
    (1, 1, 1),
    (3, 17, 65),
    (17, 3, 1),
    (65, 257, 3),
    (257, 65, 17),
    (1, 257, 257),
    (257, 1, 65),
    (64, 64, 16),
    (128, 192, 80),
];

/// Products of K terms of size ≤ 1 in f32 with a different summation order than ndarray:
/// error grows like √K·ε, well inside 1e-4 relative plus 1e-5 absolute for K ≤ 257.
fn product_tolerance() -> Tolerance {
    Tolerance::default()
}

fn assert_arrays_close(what: &str, got: &Array2<f32>, want: &Array2<f32>, tol: Tolerance) {
    assert_eq!(got.dim(), want.dim(), "{what}: shape");
    for ((idx, &g), &w) in got.indexed_iter().zip(want.iter()) {
        assert!(tol.allows(g, w), "{what}: at {idx:?} GPU {g} vs CPU {w}");
    }
}

fn variant(
    transpose_a: bool,
    transpose_b: bool,
    epilogue: Epilogue,
    activation: Activation,
) -> MatmulVariant {
    MatmulVariant {
        transpose_a,
        transpose_b,
        epilogue,
        activation,
    }
}

#[test]
fn matmul_all_layouts_match_ndarray() {
    let ctx = gpu();
    for (i, &(m, n, k)) in SHAPES.iter().enumerate() {
        let a = random(m, k, 1.0, 10 + i as u64);
        let b = random(k, n, 1.0, 100 + i as u64);
        let want = a.dot(&b);
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let gemm = Gemm::new(
                &ctx,
                variant(ta, tb, Epilogue::Plain, Activation::Identity),
                m,
                n,
                k,
            )
            .unwrap();
            let a_stored = if ta { a.t().to_owned() } else { a.clone() };
            let b_stored = if tb { b.t().to_owned() } else { b.clone() };
            gemm.upload(a_stored.view(), b_stored.view(), None).unwrap();
            gemm.run(1).unwrap();
            let what = format!("{m}x{n}x{k} transpose_a={ta} transpose_b={tb}");
            assert_arrays_close(&what, &gemm.output().unwrap(), &want, product_tolerance());
        }
    }
}

/// Every tile the engine can pick, as every shape class might (so that autotuning never changes
/// a result): the staged 64×64 tile, the direct 32×32 and 16×16 ones, and where the adapter has
/// subgroups the shuffle tiles, reading scalars and, where the shape allows, vec4s. With `all`
/// every shuffle tile, else one of each height (the widths differ only in how many invocations
/// share a row; each kernel compiled costs seconds on a software adapter).
fn every_tile(ctx: &downhill::GpuContext, all: bool) -> Vec<(MatmulTile, bool)> {
    let mut tiles = vec![MatmulTile::Large, MatmulTile::Small, MatmulTile::Tiny];
    if ctx.has_shuffles() {
        for row_groups in [1, 2, 4] {
            for width in [8, 16, 32, 64] {
                if all || [(1, 8), (2, 64), (4, 32)].contains(&(row_groups, width)) {
                    tiles.push(MatmulTile::Shuffle { row_groups, width });
                }
            }
        }
    }
    tiles
        .into_iter()
        .flat_map(|t| [(t, false), (t, true)])
        .collect()
}

/// Every tile sums every element over k in the same order: the same bits, for every layout and
/// epilogue, whichever tile the engine or the tuner picks for a shape.
#[test]
fn every_matmul_tile_gives_identical_bits() {
    let ctx = gpu();
    // Sizes off every tile's multiples, and shapes whose sizes are multiples of 4 for the
    // shuffle tiles' vec4 reads (small: every tile is compiled for every shape and layout).
    let shapes = [
        (1, 1, 1),
        (3, 17, 65),
        (17, 3, 1),
        (33, 70, 9),
        (12, 20, 36),
        (40, 8, 7),
        (64, 64, 16),
    ];
    for (i, &(m, n, k)) in shapes.iter().enumerate() {
        let a = random(m, k, 1.0, 20 + i as u64);
        let b = random(k, n, 1.0, 200 + i as u64);
        let bias = ndarray::Array1::from_iter(random(1, n, 1.0, 7));
        let pre = random(m, n, 3.0, 8);
        for (ta, tb, epilogue) in [
            (false, false, Epilogue::Plain),
            (true, false, Epilogue::Plain),
            (false, true, Epilogue::BiasActivation),
            (false, false, Epilogue::ActivationGrad),
            (true, true, Epilogue::Plain),
            (false, false, Epilogue::AccumulateActivationGrad),
        ] {
            let v = variant(ta, tb, epilogue, Activation::Tanh);
            let tiles = every_tile(&ctx, !ta && !tb && epilogue == Epilogue::Plain)
                .into_iter()
                .filter(|&(_, vec4)| !vec4 || v.vec4_fits(Some(m), Some(n), Some(k), &[]));
            let outputs: Vec<(String, Array2<f32>, Array2<f32>)> = tiles
                .map(|(tile, vec4)| {
                    let gemm = Gemm::build(&ctx, v, tile, vec4, m, n, k).unwrap();
                    let a_stored = if ta { a.t().to_owned() } else { a.clone() };
                    let b_stored = if tb { b.t().to_owned() } else { b.clone() };
                    let aux = match epilogue {
                        Epilogue::Plain | Epilogue::Accumulate => None,
                        Epilogue::BiasActivation => Some(bias.view()),
                        Epilogue::ActivationGrad | Epilogue::AccumulateActivationGrad => Some(
                            pre.as_slice()
                                .map(ndarray::ArrayView1::from)
                                .expect("contiguous"),
                        ),
                    };
                    gemm.upload(a_stored.view(), b_stored.view(), aux).unwrap();
                    gemm.run(1).unwrap();
                    let name = format!("{}{}", tile.name(), if vec4 { " vec4" } else { "" });
                    (name, gemm.output().unwrap(), gemm.pre_activation().unwrap())
                })
                .collect();
            let bits = |x: &Array2<f32>| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let (first, output, pre) = &outputs[0];
            assert_arrays_close(
                &format!("{m}x{n}x{k} {first}"),
                output,
                &match epilogue {
                    Epilogue::Plain => a.dot(&b),
                    _ => output.clone(),
                },
                product_tolerance(),
            );
            for (name, other_output, other_pre) in &outputs[1..] {
                let what = format!(
                    "{m}x{n}x{k} transpose_a={ta} transpose_b={tb} {epilogue:?}: {name} vs {first}"
                );
                assert_eq!(bits(other_output), bits(output), "{what}: output");
                if epilogue == Epilogue::BiasActivation {
                    assert_eq!(bits(other_pre), bits(pre), "{what}: pre");
                }
            }
        }
    }
}

#[test]
fn forward_epilogue_adds_bias_and_applies_each_activation() {
    let ctx = gpu();
    let (m, n, k) = (65, 17, 33);
    let x = random(m, k, 1.0, 1);
    let w = random(n, k, 1.0, 2);
    let bias = Array1::from_iter(random(1, n, 1.0, 3));
    let z = x.dot(&w.t()) + &bias;
    for activation in ACTIVATIONS {
        let gemm = Gemm::new(
            &ctx,
            variant(false, true, Epilogue::BiasActivation, activation),
            m,
            n,
            k,
        )
        .unwrap();
        gemm.upload(x.view(), w.view(), Some(bias.view())).unwrap();
        gemm.run(1).unwrap();
        let what = format!("forward with {}", activation.name());
        assert_arrays_close(
            &what,
            &gemm.pre_activation().unwrap(),
            &z,
            product_tolerance(),
        );
        let a = z.mapv(|v| activation.apply(v));
        assert_arrays_close(&what, &gemm.output().unwrap(), &a, product_tolerance());
    }
}

#[test]
fn input_gradient_epilogue_applies_each_activation_derivative() {
    let ctx = gpu();
    let (m, n, k) = (17, 65, 3);
    let delta = random(m, k, 1.0, 4);
    let w = random(k, n, 1.0, 5);
    let pre = random(m, n, 3.0, 6);
    for activation in ACTIVATIONS {
        let gemm = Gemm::new(
            &ctx,
            variant(false, false, Epilogue::ActivationGrad, activation),
            m,
            n,
            k,
        )
        .unwrap();
        let flat_pre = Array1::from_iter(pre.iter().copied());
        gemm.upload(delta.view(), w.view(), Some(flat_pre.view()))
            .unwrap();
        gemm.run(1).unwrap();
        let mut want = delta.dot(&w);
        want.zip_mut_with(&pre, |g, &z| *g *= activation.derivative(z));
        let what = format!("input gradient through {}", activation.name());
        assert_arrays_close(&what, &gemm.output().unwrap(), &want, product_tolerance());
    }
}

/// An engine pair on a one-step problem; returns (GPU, CPU) after the step.
fn one_step(setup: &Setup, rows: usize, seed: u64) -> (GpuEngine, CpuEngine) {
    let ctx = gpu();
    let init = Parameters::init(&setup.model, seed);
    let x = random(rows, setup.model.inputs(), 1.0, seed + 1);
    let y = targets(setup.loss, rows, setup.model.outputs(), seed + 2);
    let batch = Batch::new(x.view(), y.view());
    let mut g = GpuEngine::new(&ctx, setup.clone(), &init, rows).unwrap();
    let mut c = CpuEngine::new(setup.clone(), &init).unwrap();
    g.step(&batch).unwrap();
    c.step(&batch).unwrap();
    (g, c)
}

fn sgd_setup(widths: &[usize], hidden: Activation, output: Activation, loss: Loss) -> Setup {
    Setup {
        model: ModelSpec::from_widths(widths, hidden, output).unwrap(),
        loss,
        optimizer: Optimizer::Sgd(Sgd {
            lr: 0.1,
            ..Sgd::default()
        }),
    }
}

#[test]
fn loss_values_and_gradients_match_for_every_loss_and_output_activation() {
    for loss in [Loss::Mse, Loss::CrossEntropy, Loss::BceWithLogits] {
        for output in [Activation::Identity, Activation::Sigmoid, Activation::Tanh] {
            for &(rows, outputs) in &[(1, 1), (3, 17), (65, 3), (257, 2)] {
                let setup = sgd_setup(&[5, outputs], Activation::Identity, output, loss);
                let (mut g, mut c) = one_step(&setup, rows, 7);
                let what = format!(
                    "{} over {rows}x{outputs} with {} output",
                    loss.name(),
                    output.name()
                );
                let (gl, cl) = (g.last_loss().unwrap(), c.last_loss().unwrap());
                assert!(
                    Tolerance::default().allows(gl, cl),
                    "{what}: loss GPU {gl} vs CPU {cl}"
                );
                assert_close(
                    &what,
                    &g.gradients(0).unwrap(),
                    &c.gradients(0).unwrap(),
                    Tolerance::default(),
                );
            }
        }
    }
}

#[test]
fn cross_entropy_accepts_soft_targets() {
    let ctx = gpu();
    let setup = sgd_setup(
        &[4, 6],
        Activation::Identity,
        Activation::Identity,
        Loss::CrossEntropy,
    );
    let init = Parameters::init(&setup.model, 3);
    let x = random(9, 4, 1.0, 4);
    // Rows of a soft distribution and one row that does not sum to one.
    let mut y = random(9, 6, 1.0, 5).mapv(f32::abs);
    for (i, mut row) in y.rows_mut().into_iter().enumerate() {
        if i > 0 {
            let total = row.sum();
            row /= total;
        }
    }
    let targets = downhill::Targets::Dense(y);
    let batch = Batch::new(x.view(), targets.view());
    let mut g = GpuEngine::new(&ctx, setup.clone(), &init, 9).unwrap();
    let mut c = CpuEngine::new(setup, &init).unwrap();
    g.step(&batch).unwrap();
    c.step(&batch).unwrap();
    assert!(Tolerance::default().allows(g.last_loss().unwrap(), c.last_loss().unwrap()));
    assert_close(
        "soft targets",
        &g.gradients(0).unwrap(),
        &c.gradients(0).unwrap(),
        Tolerance::default(),
    );
}

#[test]
fn losses_stay_finite_for_extreme_logits() {
    let ctx = gpu();
    for loss in [Loss::CrossEntropy, Loss::BceWithLogits] {
        let setup = sgd_setup(&[1, 3], Activation::Identity, Activation::Identity, loss);
        let mut init = Parameters::zeros(&setup.model);
        init.tensor_mut("layers.0.weight")
            .unwrap()
            .copy_from_slice(&[1.0, -1.0, 0.5]);
        let x = ndarray::array![[200.0f32], [-200.0]];
        let y = targets(loss, 2, 3, 1);
        let batch = Batch::new(x.view(), y.view());
        let mut g = GpuEngine::new(&ctx, setup.clone(), &init, 2).unwrap();
        let mut c = CpuEngine::new(setup, &init).unwrap();
        g.step(&batch).unwrap();
        c.step(&batch).unwrap();
        let (gl, cl) = (g.last_loss().unwrap(), c.last_loss().unwrap());
        assert!(
            gl.is_finite() && cl.is_finite(),
            "{}: GPU {gl} CPU {cl}",
            loss.name()
        );
        assert!(
            Tolerance::default().allows(gl, cl),
            "{}: GPU {gl} CPU {cl}",
            loss.name()
        );
        assert_close(
            loss.name(),
            &g.gradients(0).unwrap(),
            &c.gradients(0).unwrap(),
            Tolerance::default(),
        );
    }
}

#[test]
fn activations_stay_finite_for_large_inputs() {
    let ctx = gpu();
    for activation in ACTIVATIONS {
        let gemm = Gemm::new(
            &ctx,
            variant(false, true, Epilogue::BiasActivation, activation),
            4,
            1,
            1,
        )
        .unwrap();
        let x = ndarray::array![[-100.0f32], [-20.0], [20.0], [100.0]];
        gemm.upload(
            x.view(),
            ndarray::array![[1.0f32]].view(),
            Some(Array1::zeros(1).view()),
        )
        .unwrap();
        gemm.run(1).unwrap();
        let out = gemm.output().unwrap();
        let want = x.mapv(|v| activation.apply(v));
        assert_arrays_close(&activation.name(), &out, &want, Tolerance::default());
    }
}

#[test]
fn backward_products_and_bias_reduction_match_on_awkward_shapes() {
    // Widths 1, 3, 17, 65, 257 through every backward kernel (dW, db, dX with act').
    let layers = [(3, 17), (17, 65), (65, 1), (1, 257), (257, 3)];
    let activations = [
        Activation::Tanh,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Gelu,
        Activation::Identity,
    ];
    let model = ModelSpec::new(
        layers
            .iter()
            .zip(activations)
            .map(|(&(inputs, outputs), activation)| Layer::dense(inputs, outputs, activation))
            .collect(),
    )
    .unwrap();
    for rows in [1, 17, 65] {
        let setup = Setup {
            model: model.clone(),
            loss: Loss::Mse,
            optimizer: Optimizer::Sgd(Sgd::default()),
        };
        let (mut g, mut c) = one_step(&setup, rows, 11);
        assert_close(
            &format!("gradients at batch {rows}"),
            &g.gradients(0).unwrap(),
            &c.gradients(0).unwrap(),
            Tolerance::default(),
        );
        let x = random(rows, 3, 1.0, 99);
        let (gp, cp) = (
            g.predict(0, x.view()).unwrap(),
            c.predict(0, x.view()).unwrap(),
        );
        assert_arrays_close("predict", &gp, &cp, Tolerance::default());
    }
}

#[test]
fn each_optimizer_kernel_matches_one_reference_update() {
    let optimizers = [
        Optimizer::Sgd(Sgd {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.01,
            ..Sgd::default()
        }),
        Optimizer::Adam(Adam {
            lr: 0.01,
            weight_decay: 0.1,
            amsgrad: true,
            ..Adam::default()
        }),
        Optimizer::AdamW(AdamW {
            lr: 0.01,
            ..AdamW::default()
        }),
        Optimizer::RmsProp(RmsProp {
            momentum: 0.5,
            centered: true,
            weight_decay: 0.01,
            ..RmsProp::default()
        }),
        Optimizer::Adagrad(Adagrad {
            lr: 0.1,
            lr_decay: 0.01,
            weight_decay: 0.01,
            initial_accumulator_value: 0.1,
            ..Adagrad::default()
        }),
    ];
    for optimizer in optimizers {
        // 257 parameters in one tensor: not a multiple of the 256-wide optimizer workgroup.
        let setup = Setup {
            model: ModelSpec::from_widths(&[257, 1], Activation::Identity, Activation::Identity)
                .unwrap(),
            loss: Loss::Mse,
            optimizer,
        };
        let (mut g, mut c) = one_step(&setup, 3, 21);
        assert_close(
            optimizer.name(),
            &g.parameters(0).unwrap(),
            &c.parameters(0).unwrap(),
            Tolerance::default(),
        );
    }
}

/// Every optimizer the library lists (a new one included, with no edit here) against its CPU
/// update over three steps: with PyTorch's defaults, then with every option it has switched on.
/// All at learning rate 1e-3: the adaptive optimizers scale every gradient element to a step
/// of about the learning rate whatever its size, so the GPU's few-ulp difference in a small
/// element (its products summed in another order) becomes a difference of a fraction of that
/// step; at RMSprop's default of 1e-2, with momentum 0.9 adding each step's difference into the
/// next, that passes the tolerance on parameters of about 0.2 after three steps.
#[test]
fn every_listed_optimizer_kernel_matches_its_cpu_update() {
    let options = Hyperparameters {
        lr: Some(1e-3),
        momentum: Some(0.9),
        weight_decay: Some(0.01),
        amsgrad: Some(true),
        nesterov: Some(true),
        centered: Some(true),
        ..Hyperparameters::default()
    };
    for defaults in Optimizer::all() {
        let variants = [
            defaults.with_lr(1e-3),
            defaults.with_hyperparameters(&options).unwrap(),
        ];
        for optimizer in variants {
            let setup = Setup {
                model: ModelSpec::from_widths(
                    &[257, 1],
                    Activation::Identity,
                    Activation::Identity,
                )
                .unwrap(),
                loss: Loss::Mse,
                optimizer,
            };
            // Three steps, so that state carried from one step to the next is compared too.
            let ctx = gpu();
            let init = Parameters::init(&setup.model, 22);
            let x = random(3, 257, 1.0, 23);
            let y = targets(setup.loss, 3, 1, 24);
            let batch = Batch::new(x.view(), y.view());
            let mut g = GpuEngine::new(&ctx, setup.clone(), &init, 3).unwrap();
            let mut c = CpuEngine::new(setup, &init).unwrap();
            for _ in 0..3 {
                g.step(&batch).unwrap();
                c.step(&batch).unwrap();
            }
            assert_close(
                optimizer.name(),
                &g.parameters(0).unwrap(),
                &c.parameters(0).unwrap(),
                Tolerance::default(),
            );
        }
    }
}

/// The epilogues that add to C (the blocks of a product split over K) add exactly: run twice
/// from zero, C = 2·A·B; and adding then applying act' from zero equals applying it directly.
#[test]
fn accumulating_epilogues_add_to_what_c_holds() {
    let ctx = gpu();
    let (m, n, k) = (9, 13, 6);
    let a = random(m, k, 1.0, 30);
    let b = random(k, n, 1.0, 31);
    let pre = random(m, n, 2.0, 32);
    let aux = pre
        .as_slice()
        .map(ndarray::ArrayView1::from)
        .expect("contiguous");
    let run = |epilogue, repeats| {
        let gemm = Gemm::new(
            &ctx,
            variant(false, false, epilogue, Activation::Tanh),
            m,
            n,
            k,
        )
        .unwrap();
        let reads_aux = matches!(
            epilogue,
            Epilogue::ActivationGrad | Epilogue::AccumulateActivationGrad
        );
        gemm.upload(a.view(), b.view(), reads_aux.then_some(aux))
            .unwrap();
        gemm.run(repeats).unwrap();
        gemm.output().unwrap()
    };
    let plain = run(Epilogue::Plain, 1);
    assert_eq!(run(Epilogue::Accumulate, 2), &plain * 2.0);
    assert_eq!(
        run(Epilogue::AccumulateActivationGrad, 1),
        run(Epilogue::ActivationGrad, 1)
    );
}
