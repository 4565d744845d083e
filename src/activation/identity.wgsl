// identity: f(z) = z, f'(z) = 1 (src/activation/identity.rs).
fn identity_activate(z: f32) -> f32 { return z; }
fn identity_grad(z: f32) -> f32 { return 1.0; }
