//! `sigmoid`: the logistic function.

/// Its name on the command line and in checkpoints.
pub(super) const NAME: &str = "sigmoid";

/// Its WGSL: `sigmoid_activate(z)` and `sigmoid_grad(z)`, the same arithmetic as below.
pub(super) const WGSL: &str = include_str!("sigmoid.wgsl");

/// `f(z) = 1 / (1 + e^{-z})`, without overflow: for `z < 0` it is computed as
/// `e^z / (1 + e^z)`.
pub fn sigmoid(z: f32) -> f32 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `f'(z) = f(z)(1 − f(z))`.
pub(super) fn derivative(z: f32) -> f32 {
    let s = sigmoid(z);
    s * (1.0 - s)
}
