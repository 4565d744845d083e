//! `leaky_relu`: the rectifier with a slope for negative inputs (PyTorch's default 0.01).

/// Its name on the command line and in checkpoints.
pub(super) const NAME: &str = "leaky_relu";

/// Its WGSL: `leaky_relu_activate(z)` and `leaky_relu_grad(z)`, the same arithmetic as below.
pub(super) const WGSL: &str = include_str!("leaky_relu.wgsl");

/// `f(z) = z if z > 0 else slope·z`.
pub(super) fn apply(z: f32, slope: f32) -> f32 {
    if z > 0.0 { z } else { slope * z }
}

/// `f'(z) = 1 if z > 0 else slope`.
pub(super) fn derivative(z: f32, slope: f32) -> f32 {
    if z > 0.0 { 1.0 } else { slope }
}
