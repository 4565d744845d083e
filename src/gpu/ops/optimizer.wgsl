// The skeleton shared by the optimizer kernels, prepended to each of them: the entry point, the
// parameter and gradient bindings, and helpers. Each optimizer's file declares its
// `Coefficients` struct and `coefficients` array (binding 5), its state slots (bindings 2-4, as
// many as it uses) and
//     fn update(i: u32, k: Coefficients, p: vec4<f32>, clipped: vec4<f32>) -> vec4<f32>
// which returns the new value of parameters i from their value p and the clipped gradient,
// updating the optimizer's state at i.
//
// Every optimizer kernel runs 256 invocations per workgroup over a grid spread in x and y (to stay under the
// per-dimension workgroup limit) and repeated in z over the models of its chunk. Every invocation
// updates four consecutive elements as one vec4 (lane by lane, the same arithmetic as one at a
// time): tensors start at multiples of 4 elements and the padding between them is zero.
//
// The parameters of a pack of models trained side by side lie model after model in the flat
// buffers. A chunk binds PER_MODEL elements of each of its models (a whole model's, or a
// binding's worth of one model larger than a binding), starting with model MODEL; both counted
// in vec4s: invocation `local` of z-slice z updates vec4 z * PER_MODEL + local of the chunk, of
// model MODEL + z,
// whose coefficients are COEFFICIENTS[model] (declared by each kernel at binding 5), clipping
// scale CLIP[model] and metrics METRICS[8 model..]. A single model is a pack of one.

struct Chunk {
    model: u32,
    per_model: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(8) var<uniform> chunk: Chunk;

@group(0) @binding(0) var<storage, read_write> param: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> grad: array<vec4<f32>>;

const GROUP: u32 = 256u;

// The gradient scale of clipping by global norm per model (1 when clipping is off), written by
// clip.wgsl.
@group(0) @binding(6) var<storage, read> clip: array<f32>;

// The training metrics of loss.wgsl, eight words per model; the optimizer sets word 3 when a
// gradient or an updated parameter is not finite, and the host reads it back with the loss (no
// per-step stall).
@group(0) @binding(7) var<storage, read_write> metrics: array<atomic<u32>>;

// Whether every lane of x is neither infinite nor NaN (all exponent bits set), tested on the bits
// so that no compiler assumption about NaN can remove the test.
fn is_finite(x: vec4<f32>) -> bool {
    let exponent = vec4<u32>(0x7f800000u);
    return all((bitcast<vec4<u32>>(x) & exponent) != exponent);
}

// g + λ p: PyTorch's weight decay (L2 penalty), skipped when λ = 0 as torch skips it.
fn add_weight_decay(g: vec4<f32>, p: vec4<f32>, weight_decay: f32) -> vec4<f32> {
    if (weight_decay != 0.0) {
        return g + weight_decay * p;
    }
    return g;
}

// The vec4 of the chunk an invocation updates; past the chunk's end when it has none.
fn element_index(wid: vec3<u32>, groups: vec3<u32>, lane: u32) -> u32 {
    let local = (wid.y * groups.x + wid.x) * GROUP + lane;
    if (local >= chunk.per_model) {
        return 0xffffffffu;
    }
    return wid.z * chunk.per_model + local;
}

// PyTorch's lerp: a + w (b - a) for |w| < 1/2, else b - (b - a)(1 - w).
fn lerp(a: vec4<f32>, b: vec4<f32>, w: f32) -> vec4<f32> {
    if (abs(w) < 0.5) {
        return a + w * (b - a);
    }
    return b - (b - a) * (1.0 - w);
}

// Updates one vec4 of parameters of the invocation's model with its optimizer's `update`, the
// gradient scaled by the model's clipping scale, and flags a gradient or a new value that is
// not finite.
@compute @workgroup_size(GROUP)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
    let i = element_index(wid, groups, lane);
    if (i >= arrayLength(&param)) {
        return;
    }
    let model = chunk.model + wid.z;
    let g = grad[i];
    let value = update(i, coefficients[model], param[i], g * clip[model]);
    if (!is_finite(g) || !is_finite(value)) {
        atomicOr(&metrics[8u * model + 3u], 1u);
    }
    param[i] = value;
}
