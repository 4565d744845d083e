//! One whole training step (forward, loss, backward, Adam update) of a 784-512-512-10 ReLU MLP
//! with cross-entropy, at batch 64, 256 and 1024, on the GPU engine and the CPU reference in
//! one run. Throughput is in samples/s. GPU steps are timed to completion (synchronize).
//!
//! cargo bench --bench step

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use downhill::gpu::Tuning;
use downhill::optim::Adam;
use downhill::{
    Activation, AdapterRequest, Batch, CpuEngine, Engine, GpuContext, GpuEngine, Loss, ModelSpec,
    Optimizer, Parameters, Setup, TargetsView,
};
use ndarray::Array2;

fn step(c: &mut Criterion) {
    let ctx = GpuContext::new(&AdapterRequest {
        tuning: Tuning::autotune_cached(),
        ..AdapterRequest::default()
    })
    .unwrap_or_else(|e| panic!("the step benchmark needs a GPU adapter: {e}"));
    eprintln!("adapter: {}", ctx.describe());
    let setup = Setup {
        model: ModelSpec::from_widths(&[784, 512, 512, 10], Activation::Relu, Activation::Identity)
            .expect("model"),
        loss: Loss::CrossEntropy,
        optimizer: Optimizer::Adam(Adam::default()),
    };
    let init = Parameters::init(&setup.model, 0);
    let mut group = c.benchmark_group("step_784_512_512_10");
    group.sample_size(10);
    for batch in [64usize, 256, 1024] {
        let x = Array2::from_shape_fn((batch, 784), |(i, j)| {
            ((i * 7 + j * 13) % 255) as f32 / 255.0
        });
        let classes: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
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
