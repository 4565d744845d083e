// relu: f(z) = max(z, 0), f'(z) = 1 if z > 0 else 0 (src/activation/relu.rs).
fn relu_activate(z: f32) -> f32 { return max(z, 0.0); }
fn relu_grad(z: f32) -> f32 { return select(0.0, 1.0, z > 0.0); }
