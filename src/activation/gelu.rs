//! `gelu`: GELU in its tanh form (PyTorch's `approximate='tanh'`).

/// Its name on the command line and in checkpoints.
pub(super) const NAME: &str = "gelu";

/// Its WGSL: `gelu_activate(z)` and `gelu_grad(z)`, the same arithmetic as below.
pub(super) const WGSL: &str = include_str!("gelu.wgsl");

/// √(2/π), the constant of the tanh form.
const GELU_C: f32 = 0.797_884_6;
/// The cubic coefficient of the tanh form.
const GELU_K: f32 = 0.044_715;

/// `tanh(c (z + 0.044715 z³))`, shared by GELU and its derivative.
fn inner_tanh(z: f32) -> f32 {
    (GELU_C * (z + GELU_K * z * z * z)).tanh()
}

/// `f(z) = ½ z (1 + tanh(c (z + 0.044715 z³)))` with `c = √(2/π)`.
pub(super) fn apply(z: f32) -> f32 {
    0.5 * z * (1.0 + inner_tanh(z))
}

/// `f'(z) = ½ (1 + t) + ½ z (1 − t²) c (1 + 3·0.044715 z²)` with
/// `t = tanh(c (z + 0.044715 z³))`.
pub(super) fn derivative(z: f32) -> f32 {
    let t = inner_tanh(z);
    0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_K * z * z)
}
