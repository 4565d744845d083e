//! What the GPU unit tests share: a device to run on, and seeded data.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::adapters::AdapterRequest;
use super::context::GpuContext;

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
