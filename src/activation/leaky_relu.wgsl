// leaky_relu: f(z) = z if z > 0 else LEAKY_SLOPE z (src/activation/leaky_relu.rs).
override LEAKY_SLOPE: f32 = 0.01;
fn leaky_relu_activate(z: f32) -> f32 { return select(LEAKY_SLOPE * z, z, z > 0.0); }
fn leaky_relu_grad(z: f32) -> f32 { return select(LEAKY_SLOPE, 1.0, z > 0.0); }
