// Operands of the shuffle matmul stored as scalars: any shape; a "vec4" is four loads.
@group(0) @binding(0) var<storage, read> lhs: array<f32>;
@group(0) @binding(1) var<storage, read> rhs: array<f32>;

fn lhs1(i: u32) -> f32 {
    return lhs[i];
}

fn lhs4(i: u32) -> vec4<f32> {
    return vec4<f32>(lhs[i], lhs[i + 1u], lhs[i + 2u], lhs[i + 3u]);
}

fn rhs1(i: u32) -> f32 {
    return rhs[i];
}

fn rhs4(i: u32) -> vec4<f32> {
    return vec4<f32>(rhs[i], rhs[i + 1u], rhs[i + 2u], rhs[i + 3u]);
}
