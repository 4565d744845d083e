// Fused RMSprop update (src/optim/rmsprop.rs): one invocation updates four parameter elements,
// its running square average, momentum buffer and (centered) running gradient average.

struct Coefficients {
    lr: f32,
    alpha: f32,
    one_minus_alpha: f32,
    eps: f32,
    weight_decay: f32,
    momentum: f32,
    use_momentum: u32,
    centered: u32,
}

@group(0) @binding(2) var<storage, read_write> square_avg: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> momentum_buffer: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> grad_avg: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> coefficients: array<Coefficients>;

// The new value of parameters i from their value p and clipped gradient (common.wgsl).
fn update(i: u32, k: Coefficients, p: vec4<f32>, clipped: vec4<f32>) -> vec4<f32> {
    let g = add_weight_decay(clipped, p, k.weight_decay);
    let s = k.alpha * square_avg[i] + k.one_minus_alpha * g * g;
    square_avg[i] = s;
    var denom: vec4<f32>;
    if (k.centered != 0u) {
        let a = lerp(grad_avg[i], g, k.one_minus_alpha);
        grad_avg[i] = a;
        denom = sqrt(s - a * a) + k.eps;
    } else {
        denom = sqrt(s) + k.eps;
    }
    if (k.use_momentum != 0u) {
        let b = k.momentum * momentum_buffer[i] + g / denom;
        momentum_buffer[i] = b;
        return p - k.lr * b;
    } else {
        return p - k.lr * g / denom;
    }
}
