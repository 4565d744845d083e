// What every matmul kernel shares (prepended after the activations, src/activation/): the shape uniform, the
// epilogue's input `aux` and the overrides. The operands A (`lhs`, binding 0) and B (`rhs`,
// binding 1) are declared by each kernel or by one of operands/; C (`result`, binding 3)
// and the pre-activations (`pre`, binding 4) by one of results/, with the epilogue that
// stores them.
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
