// Fused Adagrad update (src/optim/adagrad.rs): one invocation updates four parameter elements
// and its running sum of squared gradients.

struct Coefficients {
    clr: f32,
    weight_decay: f32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(2) var<storage, read_write> sum: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> coefficients: array<Coefficients>;

// The new value of parameters i from their value p and clipped gradient (common.wgsl).
fn update(i: u32, k: Coefficients, p: vec4<f32>, clipped: vec4<f32>) -> vec4<f32> {
    let g = add_weight_decay(clipped, p, k.weight_decay);
    let s = sum[i] + g * g;
    sum[i] = s;
    return p - k.clr * g / (sqrt(s) + k.eps);
}
