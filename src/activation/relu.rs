//! `relu`: the rectifier.

/// Its name on the command line and in checkpoints.
pub(super) const NAME: &str = "relu";

/// Its WGSL: `relu_activate(z)` and `relu_grad(z)`, the same arithmetic as below.
pub(super) const WGSL: &str = include_str!("relu.wgsl");

/// `f(z) = max(z, 0)`.
pub(super) fn apply(z: f32) -> f32 {
    z.max(0.0)
}

/// `f'(z) = 1 if z > 0 else 0`.
pub(super) fn derivative(z: f32) -> f32 {
    if z > 0.0 { 1.0 } else { 0.0 }
}
