//! What the GPU unit tests share: a device to run on, seeded data, buffers holding it, a pass
//! that runs a few dispatches, and the comparison against a CPU twin.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::adapters::AdapterRequest;
use super::context::GpuContext;
use super::ops::dispatch::Dispatch;
use crate::compare::Tolerance;

/// A device for a test. A test never skips: with no adapter it fails and says how to get one.
pub(crate) fn context() -> GpuContext {
    match GpuContext::new(&AdapterRequest::default()) {
        Ok(ctx) => ctx,
        Err(e) => panic!(
            "GPU tests need a wgpu adapter and found none: {e}\nOn Debian/Ubuntu: apt-get install \
             mesa-vulkan-drivers (software Vulkan), or run scripts/test, which installs it"
        ),
    }
}

/// `rows × cols` values uniform in `[-1, 1)`, seeded.
pub(crate) fn random(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((rows, cols), |_| rng.random_range(-1.0..1.0))
}

/// `rows` class indices below `classes`, seeded.
pub(crate) fn classes(rows: usize, classes: u32, seed: u64) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..rows).map(|_| rng.random_range(0..classes)).collect()
}

/// A storage buffer holding `values` (copied in and out).
pub(crate) fn storage<T: bytemuck::Pod>(ctx: &GpuContext, values: &[T]) -> wgpu::Buffer {
    let bytes: &[u8] = bytemuck::cast_slice(values);
    let buffer = ctx.buffer(&wgpu::BufferDescriptor {
        label: Some("test data"),
        size: (bytes.len() as u64).max(16).next_multiple_of(16),
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    ctx.queue.write_buffer(&buffer, 0, bytes);
    buffer
}

/// A uniform buffer holding `value`.
pub(crate) fn uniform<T: bytemuck::Pod>(ctx: &GpuContext, value: &T) -> wgpu::Buffer {
    let bytes = bytemuck::bytes_of(value);
    let buffer = ctx.buffer(&wgpu::BufferDescriptor {
        label: Some("test uniform"),
        size: (bytes.len() as u64).next_multiple_of(16),
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    ctx.queue.write_buffer(&buffer, 0, bytes);
    buffer
}

/// Runs `dispatches` in one pass for a batch of `rows` rows of `models` models, and waits.
pub(crate) fn run(ctx: &GpuContext, dispatches: &[Dispatch], rows: u32, models: u32) {
    let max_dim = ctx.limits().max_compute_workgroups_per_dimension;
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        for dispatch in dispatches {
            dispatch.record(&mut pass, rows, max_dim, models);
        }
    }
    ctx.queue.submit([encoder.finish()]);
    ctx.wait("running a test").expect("the test's kernels run");
}

/// The first `len` f32 values of `buffer`.
pub(crate) fn read(ctx: &GpuContext, buffer: &wgpu::Buffer, len: usize) -> Vec<f32> {
    ctx.read_back(buffer, 0, len as u64 * 4, "a test's result")
        .expect("a read-back")
}

/// Asserts that every `tested[i]` is within rel 1e-4, abs 1e-5 of `reference[i]`.
pub(crate) fn assert_close(what: &str, tested: &[f32], reference: &[f32]) {
    assert_eq!(tested.len(), reference.len(), "{what}: lengths");
    let tolerance = Tolerance::default();
    for (i, (&a, &b)) in tested.iter().zip(reference).enumerate() {
        assert!(tolerance.allows(a, b), "{what}[{i}]: {a} against {b}");
    }
}
