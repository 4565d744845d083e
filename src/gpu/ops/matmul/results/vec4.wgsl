// C (`result`, binding 3) and the forward pass's pre-activations (`pre`, binding 4) stored as
// vec4s, and the epilogue (common.wgsl) applied four elements at a time: used when every
// four columns a kernel stores start at a multiple of four elements (N % 4 == 0, see
// `MatmulVariant::vec4_result_fits`), so one access moves four.
@group(0) @binding(3) var<storage, read_write> result: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> pre: array<vec4<f32>>;

// aux[i..i+3].
fn aux4(i: u32) -> vec4<f32> {
    return vec4<f32>(aux[i], aux[i + 1u], aux[i + 2u], aux[i + 3u]);
}

// act'(z) for each of four pre-activations.
fn activate_grad4(z: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(activate_grad(z.x), activate_grad(z.y), activate_grad(z.z), activate_grad(z.w));
}

// Stores elements (row, col..col+3) of model `model`'s C, `v` being their sums over k, through
// the epilogue, element for element the arithmetic of the scalar prelude's `store`. With N a
// multiple of 4 the four columns are all in C or all past it.
fn store_quad(model: u32, row: u32, col: u32, v: vec4<f32>) {
    if (col >= dims.n) {
        return;
    }
    let local = row * dims.ldc + dims.offset_c + col;
    let at = (model * dims.stride_c + local) / 4u;
    let base_aux = model * dims.stride_aux;
    switch EPILOGUE {
        case 1u: {
            let z = v + aux4(base_aux + dims.offset_c + col);
            pre[at] = z;
            result[at] = vec4<f32>(activate(z.x), activate(z.y), activate(z.z), activate(z.w));
        }
        case 2u: {
            result[at] = v * activate_grad4(aux4(base_aux + local));
        }
        case 3u: {
            result[at] = result[at] + v;
        }
        case 4u: {
            result[at] = (result[at] + v) * activate_grad4(aux4(base_aux + local));
        }
        default: {
            result[at] = v;
        }
    }
}
