//! GPU time of each kind of kernel in a training step of a 784-512-512-10 ReLU MLP with
//! cross-entropy and Adam at batch 256: the matrix products, the loss, the bias gradients and
//! the fused optimizer update, each summed over its launches in the step. Every launch is timed
//! on the device with timestamp queries (criterion's custom timing), so host overhead is left
//! out. Needs an adapter with timestamp queries.
//!
//! cargo bench --bench kernels

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use downhill::gpu::{KernelKind, Tuning};
use downhill::optim::Adam;
use downhill::{
    Activation, AdapterRequest, Batch, Engine, GpuContext, GpuEngine, Loss, ModelSpec, Optimizer,
    Parameters, Setup, TargetsView,
};
use ndarray::Array2;

const BATCH: usize = 256;

fn kernels(c: &mut Criterion) {
    let ctx = GpuContext::new(&AdapterRequest {
        tuning: Tuning::autotune_cached(),
        ..AdapterRequest::default()
    })
    .unwrap_or_else(|e| panic!("the kernel benchmark needs a GPU adapter: {e}"));
    eprintln!("adapter: {}", ctx.describe());
    let setup = Setup {
        model: ModelSpec::from_widths(&[784, 512, 512, 10], Activation::Relu, Activation::Identity)
            .expect("model"),
        loss: Loss::CrossEntropy,
        optimizer: Optimizer::Adam(Adam::default()),
    };
    let init = Parameters::init(&setup.model, 0);
    let x = Array2::from_shape_fn((BATCH, 784), |(i, j)| {
        ((i * 7 + j * 13) % 255) as f32 / 255.0
    });
    let classes: Vec<u32> = (0..BATCH as u32).map(|i| i % 10).collect();
    let data = Batch::new(x.view(), TargetsView::Classes(&classes));
    let mut engine = GpuEngine::new(&ctx, setup, &init, BATCH).expect("gpu engine");
    if !engine.profile_next_step() {
        eprintln!("this adapter has no timestamp queries: nothing to measure");
        return;
    }
    engine.step(&data).expect("step");
    engine.take_profile().expect("profile");

    let mut group = c.benchmark_group("kernels_784_512_512_10_batch_256");
    group.sample_size(10);
    for kind in [
        KernelKind::Matmul,
        KernelKind::Loss,
        KernelKind::BiasGradient,
        KernelKind::Update,
    ] {
        group.bench_function(BenchmarkId::from_parameter(kind.name()), |bench| {
            bench.iter_custom(|steps| {
                let mut total = Duration::ZERO;
                for _ in 0..steps {
                    engine.profile_next_step();
                    engine.step(&data).expect("step");
                    let launches = engine.take_profile().expect("profile").expect("timed");
                    let seconds: f64 = launches
                        .iter()
                        .filter(|(k, _)| *k == kind)
                        .map(|(_, s)| s)
                        .sum();
                    total += Duration::from_secs_f64(seconds);
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
