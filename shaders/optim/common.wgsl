// Helpers shared by the optimizer kernels, prepended to each of them.

// PyTorch's lerp: a + w (b - a) for |w| < 1/2, else b - (b - a)(1 - w).
fn lerp(a: f32, b: f32, w: f32) -> f32 {
    if (abs(w) < 0.5) {
        return a + w * (b - a);
    }
    return b - (b - a) * (1.0 - w);
}
