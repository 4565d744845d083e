//! Matmul GFLOP/s: the GPU engine's kernel in the tile autotuning picks on this adapter and in
//! the fixed default tile, beside ndarray's matrix product and the CPU engine's, in one run.
//! Criterion's throughput is in elements/s with one element per floating-point operation,
//! so "Gelem/s" reads as GFLOP/s.
//!
//! cargo bench --bench gemm

#[path = "common/context.rs"]
mod context;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use downhill::Activation;
use downhill::gpu::{Epilogue, Gemm, MatmulTile, MatmulVariant};
use ndarray::Array2;

fn matrix(n: usize, seed: u32) -> Array2<f32> {
    Array2::from_shape_fn((n, n), |(i, j)| {
        ((i * 31 + j * 17 + seed as usize) % 97) as f32 / 97.0 - 0.5
    })
}

fn gemm(c: &mut Criterion) {
    let ctx = context::tuned_context("GEMM");
    let mut group = c.benchmark_group("gemm");
    group.sample_size(10);
    for n in [256, 512, 1024] {
        let (a, b) = (matrix(n, 1), matrix(n, 2));
        group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        let variant = MatmulVariant {
            transpose_a: false,
            transpose_b: false,
            epilogue: Epilogue::Plain,
            activation: Activation::Identity,
        };
        let tuned = Gemm::new(&ctx, variant, n, n, n).expect("matmul buffers");
        let fixed = Gemm::with_tile(&ctx, variant, MatmulTile::for_shape(n, n), n, n, n)
            .expect("matmul buffers");
        for (name, kernel) in [("gpu", &tuned), ("gpu_fixed_tile", &fixed)] {
            kernel.upload(a.view(), b.view(), None).expect("upload");
            group.bench_function(BenchmarkId::new(name, n), |bench| {
                bench.iter(|| kernel.run(1).expect("matmul"))
            });
        }
        eprintln!("n = {n}: tuned tile {}", tuned.tile().name());
        group.bench_function(BenchmarkId::new("ndarray", n), |bench| {
            bench.iter(|| a.dot(&b))
        });
        group.bench_function(BenchmarkId::new("cpu_engine", n), |bench| {
            bench.iter(|| downhill::cpu::product(a.view(), b.view()))
        });
    }
    group.finish();
}

criterion_group!(benches, gemm);
criterion_main!(benches);
