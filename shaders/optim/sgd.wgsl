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

@group(0) @binding(0) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> momentum_buffer: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> unused1: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> unused2: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> coefficients: array<Coefficients>;

@compute @workgroup_size(GROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
    let i = element_index(wid, groups, lane);
    if (i >= arrayLength(&param)) {
        return;
    }
    let model = model_of(wid);
    let k = coefficients[model];
    var p = param[i];
    var g = grad[i] * clip[model];
    if (k.weight_decay != 0.0) {
        g += k.weight_decay * p;
    }
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
    store(i, model, grad[i], p - k.lr * g);
}
