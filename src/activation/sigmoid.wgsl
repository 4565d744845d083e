// sigmoid: f(z) = 1 / (1 + e^-z), f'(z) = f(z)(1 - f(z)) (src/activation/sigmoid.rs).
fn sigmoid_activate(z: f32) -> f32 { return sigmoid(z); }
fn sigmoid_grad(z: f32) -> f32 {
    let s = sigmoid(z);
    return s * (1.0 - s);
}
