// gelu, tanh form (src/activation/gelu.rs).
const GELU_C: f32 = 0.7978846;   // sqrt(2 / pi)
const GELU_K: f32 = 0.044715;

fn gelu_inner_tanh(z: f32) -> f32 {
    return safe_tanh(GELU_C * (z + GELU_K * z * z * z));
}

fn gelu_activate(z: f32) -> f32 { return 0.5 * z * (1.0 + gelu_inner_tanh(z)); }
fn gelu_grad(z: f32) -> f32 {
    let t = gelu_inner_tanh(z);
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_K * z * z);
}
