// Fused AdaDelta update (src/optim/adadelta.rs): one invocation updates four parameter elements,
// its running average of squared gradients and its running average of squared updates.

struct Coefficients {
    lr: f32,
    rho: f32,
    one_minus_rho: f32,
    eps: f32,
    weight_decay: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(2) var<storage, read_write> square_avg: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> acc_delta: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> coefficients: array<Coefficients>;

// The new value of parameters i from their value p and clipped gradient (common.wgsl).
fn update(i: u32, k: Coefficients, p: vec4<f32>, clipped: vec4<f32>) -> vec4<f32> {
    let g = add_weight_decay(clipped, p, k.weight_decay);
    let v = k.rho * square_avg[i] + k.one_minus_rho * g * g;
    square_avg[i] = v;
    let delta = sqrt(acc_delta[i] + k.eps) / sqrt(v + k.eps) * g;
    acc_delta[i] = k.rho * acc_delta[i] + k.one_minus_rho * delta * delta;
    return p - k.lr * delta;
}
