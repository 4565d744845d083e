// Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_, writing
//   SCALE[z] = min(1, MAX_NORM / (sqrt(sum of model z's squared gradients) + 1e-6))
// which the optimizer kernels multiply every gradient of model z by. No atomics: deterministic.
//
// `main`: one workgroup of 256 invocations per model z (workgroup_id.z), whose gradients start at
// z * STRIDE in one binding. Invocation t sums the squares of GRAD[t], GRAD[t+256], ... in order,
// and a fixed tree adds the partial sums.
// When the gradients do not fit one binding, they are cut into chunks, each bound on its own:
// `partial_sums` reduces one chunk the same way into PARTIALS[INDEX], and `scale_from_partials`
// then adds model z's CHUNKS partial sums in order (workgroup z, invocation 0).

struct ClipParams {
    // main: gradients per model; partial_sums: elements in the chunk; scale_from_partials:
    // chunks per model.
    count: u32,
    max_norm: f32,
    // main: elements between models; partial_sums: where the chunk's sum goes.
    stride: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> grad: array<f32>;
@group(0) @binding(1) var<storage, read_write> scale: array<f32>;
@group(0) @binding(2) var<uniform> params: ClipParams;

var<workgroup> partial: array<f32, 256>;

// The sum of the squares of GRAD[base .. base + count], reduced over the workgroup in a fixed
// order; meaningful in invocation 0.
fn sum_squares(t: u32, base: u32, count: u32) -> f32 {
    var sum = 0.0;
    for (var i = t; i < count; i += 256u) {
        let g = grad[base + i];
        sum += g * g;
    }
    partial[t] = sum;
    workgroupBarrier();
    for (var width = 128u; width > 0u; width >>= 1u) {
        if (t < width) {
            partial[t] += partial[t + width];
        }
        workgroupBarrier();
    }
    return partial[0];
}

fn clip_scale(sum: f32) -> f32 {
    return min(1.0, params.max_norm / (sqrt(sum) + 1e-6));
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let sum = sum_squares(t, wid.z * params.stride, params.count);
    if (t == 0u) {
        scale[wid.z] = clip_scale(sum);
    }
}

// SCALE is the partial sums here.
@compute @workgroup_size(256)
fn partial_sums(@builtin(local_invocation_index) t: u32) {
    let sum = sum_squares(t, 0u, params.count);
    if (t == 0u) {
        scale[params.stride] = sum;
    }
}

// GRAD is the partial sums here.
@compute @workgroup_size(256)
fn scale_from_partials(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    if (t == 0u) {
        var sum = 0.0;
        for (var c = 0u; c < params.count; c++) {
            sum += grad[wid.z * params.count + c];
        }
        scale[wid.z] = clip_scale(sum);
    }
}
