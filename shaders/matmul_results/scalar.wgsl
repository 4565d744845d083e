// C (`result`, binding 3) and the forward pass's pre-activations (`pre`, binding 4) stored as
// scalars: any shape, any tile. Kernels store element by element here (RESULT_VEC4 is false);
// the four-wide accessors, four scalar accesses each, let matmul_common.wgsl's store4 compile.
const RESULT_VEC4: bool = false;
@group(0) @binding(3) var<storage, read_write> result: array<f32>;
@group(0) @binding(4) var<storage, read_write> pre: array<f32>;

fn result1(i: u32) -> f32 {
    return result[i];
}

fn set_result1(i: u32, v: f32) {
    result[i] = v;
}

fn set_pre1(i: u32, v: f32) {
    pre[i] = v;
}

fn result4(i: u32) -> vec4<f32> {
    return vec4<f32>(result[i], result[i + 1u], result[i + 2u], result[i + 3u]);
}

fn set_result4(i: u32, v: vec4<f32>) {
    result[i] = v.x;
    result[i + 1u] = v.y;
    result[i + 2u] = v.z;
    result[i + 3u] = v.w;
}

fn set_pre4(i: u32, v: vec4<f32>) {
    pre[i] = v.x;
    pre[i + 1u] = v.y;
    pre[i + 2u] = v.z;
    pre[i + 3u] = v.w;
}
