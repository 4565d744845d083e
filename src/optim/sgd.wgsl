// Fused SGD update (src/optim/sgd.rs): one invocation updates four parameter elements,
// reading its gradient and momentum buffer and writing both back in one pass.

struct Coefficients {
    lr: f32,
    momentum: f32,
    one_minus_dampening: f32,
    weight_decay: f32,
    first_step: u32,
    nesterov: u32,
    use_momentum: u32,
    _pad: u32,
}

@group(0) @binding(2) var<storage, read_write> momentum_buffer: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> coefficients: array<Coefficients>;

// The new value of parameters i from their value p and clipped gradient (common.wgsl).
fn update(i: u32, k: Coefficients, p: vec4<f32>, clipped: vec4<f32>) -> vec4<f32> {
    var g = add_weight_decay(clipped, p, k.weight_decay);
    if (k.use_momentum != 0u) {
        var b: vec4<f32>;
        if (k.first_step != 0u) {
            b = g;
        } else {
            b = k.momentum * momentum_buffer[i] + k.one_minus_dampening * g;
        }
        momentum_buffer[i] = b;
        if (k.nesterov != 0u) {
            g = g + k.momentum * b;
        } else {
            g = b;
        }
    }
    return p - k.lr * g;
}
