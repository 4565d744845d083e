// C (`result`, binding 3) and the forward pass's pre-activations (`pre`, binding 4) stored as
// scalars, and the epilogue (common.wgsl) applied element by element: any shape, any
// tile.
@group(0) @binding(3) var<storage, read_write> result: array<f32>;
@group(0) @binding(4) var<storage, read_write> pre: array<f32>;

// Stores element (row, col) of model `model`'s C, `v` being its sum over k, through the
// epilogue.
fn store(model: u32, row: u32, col: u32, v: f32) {
    let local = row * dims.ldc + dims.offset_c + col;
    let at = model * dims.stride_c + local;
    let base_aux = model * dims.stride_aux;
    switch EPILOGUE {
        case 1u: {
            let z = v + aux[base_aux + dims.offset_c + col];
            pre[at] = z;
            result[at] = activate(z);
        }
        case 2u: {
            result[at] = v * activate_grad(aux[base_aux + local]);
        }
        case 3u: {
            result[at] = result[at] + v;
        }
        case 4u: {
            result[at] = (result[at] + v) * activate_grad(aux[base_aux + local]);
        }
        default: {
            result[at] = v;
        }
    }
}

// Stores elements (row, col..col+3) of model `model`'s C, those before column N.
fn store_quad(model: u32, row: u32, col: u32, v: vec4<f32>) {
    for (var j = 0u; j < 4u; j++) {
        if (col + j >= dims.n) {
            break;
        }
        store(model, row, col + j, v[j]);
    }
}
