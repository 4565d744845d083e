// Fused Adam / AdamW update (src/optim/adam.rs, src/optim/adamw.rs): one invocation updates
// four parameter elements and their first moment, second moment and (amsgrad) running maximum.

struct Coefficients {
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    step_size: f32,
    bias_correction2_sqrt: f32,
    eps: f32,
    weight_decay: f32,
    decay_factor: f32,
    amsgrad: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(2) var<storage, read_write> exp_avg: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> exp_avg_sq: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> max_exp_avg_sq: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> coefficients: array<Coefficients>;

// The new value of parameters i from their value p and clipped gradient (common.wgsl).
fn update(i: u32, k: Coefficients, p: vec4<f32>, clipped: vec4<f32>) -> vec4<f32> {
    let decayed = p * k.decay_factor;
    let g = add_weight_decay(clipped, decayed, k.weight_decay);
    let m = lerp(exp_avg[i], g, k.one_minus_beta1);
    let v = k.beta2 * exp_avg_sq[i] + k.one_minus_beta2 * g * g;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    var second = v;
    if (k.amsgrad != 0u) {
        second = max(max_exp_avg_sq[i], v);
        max_exp_avg_sq[i] = second;
    }
    let denom = sqrt(second) / k.bias_correction2_sqrt + k.eps;
    return decayed - k.step_size * m / denom;
}
