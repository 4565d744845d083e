//! Scalar helpers the CPU updates share, each the f32 arithmetic of its WGSL twin in
//! `src/gpu/ops/optimizer.wgsl`.

/// PyTorch's `lerp(a, b, w)`: `a + w(b − a)` for `|w| < ½`, else `b − (b − a)(1 − w)`.
pub fn lerp(a: f32, b: f32, w: f32) -> f32 {
    if w.abs() < 0.5 {
        a + w * (b - a)
    } else {
        b - (b - a) * (1.0 - w)
    }
}

/// The gradient an optimizer steps with: `g·clip`, plus `λ·p` (PyTorch's weight decay, an L2
/// penalty; skipped when `λ = 0`, as torch skips it).
pub(super) fn decayed_gradient(g: f32, clip: f32, p: f32, weight_decay: f32) -> f32 {
    let g = g * clip;
    if weight_decay != 0.0 {
        g + weight_decay * p
    } else {
        g
    }
}
