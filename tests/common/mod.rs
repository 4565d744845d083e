//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod binary;
pub mod cli;
pub mod runs;
pub mod torch;

use downhill::{
    Activation, AdapterRequest, Batch, CpuEngine, Engine, GpuContext, GpuEngine, Loss, Parameters,
    Setup, Targets, Tolerance, worst_difference,
};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Every activation, with a non-default leaky slope.
pub const ACTIVATIONS: [Activation; 6] = [
    Activation::Identity,
    Activation::Relu,
    Activation::LeakyRelu { slope: 0.1 },
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::Gelu,
];

/// The GPU context for tests. A test never skips: with no adapter it fails and says how to get one.
pub fn gpu() -> GpuContext {
    match GpuContext::new(&AdapterRequest::default()) {
        Ok(ctx) => ctx,
        Err(e) => panic!(
            "GPU tests need a wgpu adapter and found none: {e}\n\
             On Debian/Ubuntu: apt-get install mesa-vulkan-drivers (software Vulkan), \
             or run scripts/test, which installs it"
        ),
    }
}

/// Uniform random values in `[-scale, scale)`, seeded.
pub fn random(rows: usize, cols: usize, scale: f32, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((rows, cols), |_| rng.random_range(-scale..scale))
}

/// Targets that suit `loss` for `rows` samples and `outputs` outputs, seeded.
pub fn targets(loss: Loss, rows: usize, outputs: usize, seed: u64) -> Targets {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    match loss {
        Loss::Mse => Targets::Dense(random(rows, outputs, 1.0, seed)),
        Loss::CrossEntropy => Targets::Classes(
            (0..rows)
                .map(|_| rng.random_range(0..outputs as u32))
                .collect(),
        ),
        Loss::BceWithLogits => Targets::Dense(Array2::from_shape_fn((rows, outputs), |_| {
            if rng.random_bool(0.5) { 1.0 } else { 0.0 }
        })),
    }
}

/// Asserts `tested` matches `reference` within `tolerance`, naming the worst entry if not.
pub fn assert_close(what: &str, tested: &Parameters, reference: &Parameters, tolerance: Tolerance) {
    let worst = worst_difference(tested, reference, tolerance);
    assert!(
        worst.ratio <= 1.0,
        "{what}: {}[{}] is {} on the GPU but {} on the CPU ({}x the tolerance {:?})",
        worst.tensor,
        worst.index,
        worst.value,
        worst.reference,
        worst.ratio,
        tolerance
    );
}

/// Runs `steps` steps of the same batches through a GPU and a CPU engine from the same start,
/// checking the loss every step within `tolerance` and the parameters at the end: the tensors
/// named in `loosened` within `loose` (the caller says why), every other within `tolerance`.
pub fn run_both_loosening(
    ctx: &GpuContext,
    setup: &Setup,
    init: &Parameters,
    batches: &[(Array2<f32>, Targets)],
    steps: usize,
    (tolerance, loosened, loose): (Tolerance, &[String], Tolerance),
) -> (GpuEngine, CpuEngine) {
    let max_batch = batches.iter().map(|(x, _)| x.nrows()).max().unwrap();
    let mut gpu = GpuEngine::new(ctx, setup.clone(), init, max_batch).unwrap();
    let mut cpu = CpuEngine::new(setup.clone(), init).unwrap();
    for step in 0..steps {
        let (x, y) = &batches[step % batches.len()];
        let batch = Batch::new(x.view(), y.view());
        gpu.step(&batch).unwrap();
        cpu.step(&batch).unwrap();
        let (g, c) = (gpu.last_loss().unwrap(), cpu.last_loss().unwrap());
        assert!(
            tolerance.allows(g, c),
            "{:?}: loss at step {} is {g} on the GPU but {c} on the CPU",
            setup.optimizer,
            step + 1
        );
    }
    let (tested, reference) = (gpu.parameters(0).unwrap(), cpu.parameters(0).unwrap());
    assert_eq!(tested.batches_tracked(), reference.batches_tracked());
    for (a, b) in tested.named_tensors().iter().zip(reference.named_tensors()) {
        let bound = if loosened.contains(&a.name) {
            loose
        } else {
            tolerance
        };
        for (i, (x, y)) in a.values.iter().zip(&b.values).enumerate() {
            assert!(
                bound.allows(*x, *y),
                "{:?} after {steps} steps: {}[{i}] is {x} on the GPU but {y} on the CPU \
                 (tolerance {bound:?})",
                setup.optimizer,
                a.name
            );
        }
    }
    (gpu, cpu)
}
