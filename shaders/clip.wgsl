// Gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_: one workgroup of 256
// invocations. Invocation t sums the squares of GRAD[t], GRAD[t+256], ... in order, a fixed tree
// adds the partial sums, and invocation 0 writes
//   SCALE[0] = min(1, MAX_NORM / (sqrt(sum) + 1e-6))
// which the optimizer kernels multiply every gradient by. No atomics: deterministic. Batched over
// workgroup_id.z, the model index z of a pack: model z's gradients start at z * STRIDE and its
// scale is SCALE[z].

struct ClipParams {
    count: u32,
    max_norm: f32,
    stride: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> grad: array<f32>;
@group(0) @binding(1) var<storage, read_write> scale: array<f32>;
@group(0) @binding(2) var<uniform> params: ClipParams;

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let base = wid.z * params.stride;
    var sum = 0.0;
    for (var i = t; i < params.count; i += 256u) {
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
    if (t == 0u) {
        scale[wid.z] = min(1.0, params.max_norm / (sqrt(partial[0]) + 1e-6));
    }
}
