// C (`result`, binding 3) and the forward pass's pre-activations (`pre`, binding 4) stored as
// vec4s: used when every vec4 the kernel writes starts at a multiple of four elements (see
// `MatmulVariant::vec4_result_fits`), so one access moves four.
const RESULT_VEC4: bool = true;
@group(0) @binding(3) var<storage, read_write> result: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> pre: array<vec4<f32>>;

fn result1(i: u32) -> f32 {
    return result[i / 4u][i % 4u];
}

fn set_result1(i: u32, v: f32) {
    result[i / 4u][i % 4u] = v;
}

fn set_pre1(i: u32, v: f32) {
    pre[i / 4u][i % 4u] = v;
}

fn result4(i: u32) -> vec4<f32> {
    return result[i / 4u];
}

fn set_result4(i: u32, v: vec4<f32>) {
    result[i / 4u] = v;
}

fn set_pre4(i: u32, v: vec4<f32>) {
    pre[i / 4u] = v;
}
