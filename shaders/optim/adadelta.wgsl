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

@group(0) @binding(0) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> square_avg: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> acc_delta: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> unused: array<vec4<f32>>;
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
    let p = param[i];
    var g = grad[i] * clip[model];
    if (k.weight_decay != 0.0) {
        g += k.weight_decay * p;
    }
    let v = k.rho * square_avg[i] + k.one_minus_rho * g * g;
    square_avg[i] = v;
    let delta = sqrt(acc_delta[i] + k.eps) / sqrt(v + k.eps) * g;
    acc_delta[i] = k.rho * acc_delta[i] + k.one_minus_rho * delta * delta;
    store(i, model, grad[i], p - k.lr * delta);
}
