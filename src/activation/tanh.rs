//! `tanh`: the hyperbolic tangent.

/// Its name on the command line and in checkpoints.
pub(super) const NAME: &str = "tanh";

/// Its WGSL: `tanh_activate(z)` and `tanh_grad(z)`, the same arithmetic as below.
pub(super) const WGSL: &str = include_str!("tanh.wgsl");

/// `f(z) = tanh z`.
pub(super) fn apply(z: f32) -> f32 {
    z.tanh()
}

/// `f'(z) = 1 − tanh² z`.
pub(super) fn derivative(z: f32) -> f32 {
    let t = z.tanh();
    1.0 - t * t
}
