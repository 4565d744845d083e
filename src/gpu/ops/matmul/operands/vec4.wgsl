// Operands of the shuffle matmul stored as vec4s: used when every vec4 the kernel reads starts at
// a multiple of four elements (see `MatmulShape::vec4_aligned`), so one load fetches four.
@group(0) @binding(0) var<storage, read> lhs: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> rhs: array<vec4<f32>>;

fn lhs1(i: u32) -> f32 {
    return lhs[i / 4u][i % 4u];
}

fn lhs4(i: u32) -> vec4<f32> {
    return lhs[i / 4u];
}

fn rhs1(i: u32) -> f32 {
    return rhs[i / 4u][i % 4u];
}

fn rhs4(i: u32) -> vec4<f32> {
    return rhs[i / 4u];
}
