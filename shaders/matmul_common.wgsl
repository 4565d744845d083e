// What every matmul kernel shares (prepended after activation.wgsl): the shape uniform, the
// epilogue's input `aux`, and the epilogue that stores elements of C. The operands A (`lhs`,
// binding 0) and B (`rhs`, binding 1) are declared by each kernel or by one of
// matmul_operands/; C (`result`, binding 3) and the pre-activations (`pre`, binding 4) by one of
// matmul_results/, which give their accessors result1/set_result1/set_pre1 and the vec4 forms.
//
// Layouts (row-major): A is [M,K], or [K,M] when TRANSPOSE_A, with rows LDA elements apart and
// starting OFFSET_A into its binding; B is [K,N], or [N,K] when TRANSPOSE_B; C (and an [M,N]
// AUX) has rows LDC elements apart and starts at column OFFSET_C. So one product can read a
// block of columns of a wider A and write a block of columns of a wider C: the blocks of a
// layer split across several buffers. The epilogue, chosen by EPILOGUE, is applied per element:
//   0: C = A*B                                   (weight gradient dW = dZ^T * X)
//   1: PRE = A*B^T + bias, C = act(PRE)          (forward; bias read from AUX[n])
//   2: C = (A*B) * act'(AUX)                     (input gradient through the previous layer's
//                                                 activation; AUX = its pre-activation [M,N])
//   3: C = C + A*B                               (a middle block of a sum over K split in blocks)
//   4: C = (C + A*B) * act'(AUX)                 (its last block, for the input gradient)
//
// Batched over workgroup_id.z, the model index z of a pack of models trained side by side: each
// operand of model z starts STRIDE_* elements after model z-1's (a stride of 0 shares an operand,
// such as the input batch, between all models). RESULT and PRE share STRIDE_C. Every model's
// arithmetic is the same as when it is computed alone.

struct Dims {
    m: u32,
    n: u32,
    k: u32,
    // Elements between rows of A as stored (K for a row-major A, M for a transposed one, unless
    // A is a block of columns of a wider matrix).
    lda: u32,
    stride_a: u32,
    stride_b: u32,
    stride_c: u32,
    stride_aux: u32,
    // Elements between rows of C (and of an [M,N] AUX): N, unless C is a block of columns.
    ldc: u32,
    // Where A starts in its binding, and C's (and AUX's) first column.
    offset_a: u32,
    offset_c: u32,
    _pad: u32,
}

@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(5) var<uniform> dims: Dims;

override TRANSPOSE_A: bool = false;
override TRANSPOSE_B: bool = false;
override EPILOGUE: u32 = 0u;

// Where model z's operands start.
var<private> base_a: u32;
var<private> base_b: u32;

// Stores element (row, col) of model `model`'s C, `v` being its sum over k, through the
// epilogue.
fn store(model: u32, row: u32, col: u32, v: f32) {
    let local = row * dims.ldc + dims.offset_c + col;
    let at = model * dims.stride_c + local;
    let base_aux = model * dims.stride_aux;
    switch EPILOGUE {
        case 1u: {
            let z = v + aux[base_aux + dims.offset_c + col];
            set_pre1(at, z);
            set_result1(at, activate(z));
        }
        case 2u: {
            set_result1(at, v * activate_grad(aux[base_aux + local]));
        }
        case 3u: {
            set_result1(at, result1(at) + v);
        }
        case 4u: {
            set_result1(at, (result1(at) + v) * activate_grad(aux[base_aux + local]));
        }
        default: {
            set_result1(at, v);
        }
    }
}

// aux[i..i+3].
fn aux4(i: u32) -> vec4<f32> {
    return vec4<f32>(aux[i], aux[i + 1u], aux[i + 2u], aux[i + 3u]);
}

// act'(z) for each of four pre-activations.
fn activate_grad4(z: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(activate_grad(z.x), activate_grad(z.y), activate_grad(z.z), activate_grad(z.w));
}

// Stores elements (row, col..col+3) of model `model`'s C, `v` being their sums over k, through
// the epilogue: element for element the arithmetic of `store`, in one access per buffer where
// C is stored as vec4s.
fn store4(model: u32, row: u32, col: u32, v: vec4<f32>) {
    let local = row * dims.ldc + dims.offset_c + col;
    let at = model * dims.stride_c + local;
    let base_aux = model * dims.stride_aux;
    switch EPILOGUE {
        case 1u: {
            let z = v + aux4(base_aux + dims.offset_c + col);
            set_pre4(at, z);
            set_result4(at, vec4<f32>(activate(z.x), activate(z.y), activate(z.z), activate(z.w)));
        }
        case 2u: {
            set_result4(at, v * activate_grad4(aux4(base_aux + local)));
        }
        case 3u: {
            set_result4(at, result4(at) + v);
        }
        case 4u: {
            set_result4(at, (result4(at) + v) * activate_grad4(aux4(base_aux + local)));
        }
        default: {
            set_result4(at, v);
        }
    }
}
