//! One whole training step (forward, loss, backward, Adam update) of a 784-512-512-10 ReLU MLP
//! with cross-entropy, at batch 64, 256 and 1024, on the GPU engine and the CPU reference in
//! one run. Throughput is in samples/s. GPU steps are timed to completion (synchronize).
//!
//! cargo bench --bench step

#[path = "common/context.rs"]
mod context;
#[path = "common/mlp.rs"]
mod mlp;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use downhill::{Batch, CpuEngine, Engine, GpuEngine, Parameters, TargetsView};

fn step(c: &mut Criterion) {
    let ctx = context::tuned_context("step");
    let setup = mlp::setup();
    let init = Parameters::init(&setup.model, 0);
    let mut group = c.benchmark_group("step_784_512_512_10");
    group.sample_size(10);
    for batch in [64usize, 256, 1024] {
        let (x, classes) = mlp::batch(batch);
        let data = Batch::new(x.view(), TargetsView::Classes(&classes));
        group.throughput(Throughput::Elements(batch as u64));
        let mut gpu = GpuEngine::new(&ctx, setup.clone(), &init, batch).expect("gpu engine");
        group.bench_function(BenchmarkId::new("gpu", batch), |bench| {
            bench.iter(|| {
                gpu.step(&data).expect("gpu step");
                gpu.synchronize().expect("gpu sync");
            })
        });
        let mut cpu = CpuEngine::new(setup.clone(), &init).expect("cpu engine");
        group.bench_function(BenchmarkId::new("cpu", batch), |bench| {
            bench.iter(|| cpu.step(&data).expect("cpu step"))
        });
    }
    group.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
