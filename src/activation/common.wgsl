// What every activation's WGSL may use: the ACTIVATION override that picks one per pipeline (its
// index in src/activation/mod.rs), and overflow-safe sigmoid and tanh (the loss uses sigmoid too).

override ACTIVATION: u32 = 0u;

// 1 / (1 + e^-z) without overflow: e^z / (1 + e^z) for negative z.
fn sigmoid(z: f32) -> f32 {
    if (z >= 0.0) {
        return 1.0 / (1.0 + exp(-z));
    }
    let e = exp(z);
    return e / (1.0 + e);
}

// tanh with its argument clamped to +-15, where the f32 result is already +-1: some drivers
// evaluate tanh as a ratio of exponentials that overflows to NaN for large |z|.
fn safe_tanh(z: f32) -> f32 {
    return tanh(clamp(z, -15.0, 15.0));
}
