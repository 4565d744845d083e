// tanh: f(z) = tanh z, f'(z) = 1 - tanh^2 z (src/activation/tanh.rs).
fn tanh_activate(z: f32) -> f32 { return safe_tanh(z); }
fn tanh_grad(z: f32) -> f32 {
    let t = safe_tanh(z);
    return 1.0 - t * t;
}
