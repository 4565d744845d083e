//! The model the `step` and `kernels` benchmarks train: a 784-512-512-10 ReLU MLP with
//! cross-entropy and Adam, on batches of synthetic inputs.

use downhill::optim::Adam;
use downhill::{Activation, Loss, ModelSpec, Optimizer, Setup};
use ndarray::Array2;

/// A 784-512-512-10 ReLU MLP, cross-entropy, Adam with PyTorch's defaults.
pub fn setup() -> Setup {
    Setup {
        model: ModelSpec::from_widths(&[784, 512, 512, 10], Activation::Relu, Activation::Identity)
            .expect("model"),
        loss: Loss::CrossEntropy,
        optimizer: Optimizer::Adam(Adam::default()),
    }
}

/// A batch of `rows` inputs in [0, 1] and their classes, cycling through 0..10.
pub fn batch(rows: usize) -> (Array2<f32>, Vec<u32>) {
    let x = Array2::from_shape_fn((rows, 784), |(i, j)| {
        ((i * 7 + j * 13) % 255) as f32 / 255.0
    });
    (x, (0..rows as u32).map(|i| i % 10).collect())
}
