//! GPU time of each kind of kernel in a training step of a 784-512-512-10 ReLU MLP with
//! cross-entropy and Adam at batch 256: the matrix products, the loss, the bias gradients and
//! the fused optimizer update, each summed over its launches in the step. Every launch is timed
//! on the device with timestamp queries (criterion's custom timing), so host overhead is left
//! out. Needs an adapter with timestamp queries.
//!
//! cargo bench --bench kernels

use std::time::Duration;

#[path = "common/context.rs"]
mod context;
#[path = "common/mlp.rs"]
mod mlp;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use downhill::gpu::KernelKind;
use downhill::{Batch, Engine, GpuEngine, Parameters, TargetsView};

const BATCH: usize = 256;

fn kernels(c: &mut Criterion) {
    let ctx = context::tuned_context("kernel");
    let setup = mlp::setup();
    let init = Parameters::init(&setup.model, 0);
    let (x, classes) = mlp::batch(BATCH);
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
