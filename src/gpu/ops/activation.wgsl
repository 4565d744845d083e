// Elementwise activations and their derivatives at the pre-activation z, prepended to the
// kernels that fuse them. The ACTIVATION override picks one per pipeline:
//   0 identity, 1 relu, 2 leaky_relu(LEAKY_SLOPE), 3 sigmoid, 4 tanh, 5 gelu (tanh form).
// The formulas match src/model.rs (Activation::apply and Activation::derivative).

override ACTIVATION: u32 = 0u;
override LEAKY_SLOPE: f32 = 0.01;

const GELU_C: f32 = 0.7978846;   // sqrt(2 / pi)
const GELU_K: f32 = 0.044715;

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

fn gelu_inner_tanh(z: f32) -> f32 {
    return safe_tanh(GELU_C * (z + GELU_K * z * z * z));
}

fn activate(z: f32) -> f32 {
    switch ACTIVATION {
        case 1u: { return max(z, 0.0); }
        case 2u: { return select(LEAKY_SLOPE * z, z, z > 0.0); }
        case 3u: { return sigmoid(z); }
        case 4u: { return safe_tanh(z); }
        case 5u: { return 0.5 * z * (1.0 + gelu_inner_tanh(z)); }
        default: { return z; }
    }
}

fn activate_grad(z: f32) -> f32 {
    switch ACTIVATION {
        case 1u: { return select(0.0, 1.0, z > 0.0); }
        case 2u: { return select(LEAKY_SLOPE, 1.0, z > 0.0); }
        case 3u: {
            let s = sigmoid(z);
            return s * (1.0 - s);
        }
        case 4u: {
            let t = safe_tanh(z);
            return 1.0 - t * t;
        }
        case 5u: {
            let t = gelu_inner_tanh(z);
            return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_K * z * z);
        }
        default: { return 1.0; }
    }
}
