// Fused Adagrad update (src/optim/adagrad.rs): one invocation updates four parameter elements
// and its running sum of squared gradients.

struct Coefficients {
    clr: f32,
    weight_decay: f32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> grad: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> sum: array<vec4<f32>>;
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
    let p = param[i];
    var g = grad[i] * clip[model];
    if (k.weight_decay != 0.0) {
        g += k.weight_decay * p;
    }
    let s = sum[i] + g * g;
    sum[i] = s;
    store(i, model, grad[i], p - k.clr * g / (sqrt(s) + k.eps));
}
