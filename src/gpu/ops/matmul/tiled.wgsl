// Tiled, register-blocked matrix product C[M,N] = op(A)[M,K] * op(B)[K,N].
//
// One workgroup of SIDE x SIDE invocations computes a T x T tile of C, T = 4 * SIDE; one
// invocation computes a 4x4 block of it, rows 4*ly..4*ly+3 and columns 4*lx..4*lx+3 of the tile,
// keeping the block in registers. Two ways to feed it, chosen by SHARED:
//   true  (SIDE 16, 64x64 tiles; large products): K is walked in slices of 16; the workgroup
//         stages a 64x16 slice of op(A) and a 16x64 slice of op(B) in workgroup memory, reading
//         global memory in its natural order (along K for a row-major A, along M for a
//         transposed one), then every invocation accumulates 16 rank-1 updates of its block.
//   false (SIDE 8 or 4, 32x32 or 16x16 tiles; small products, where a 64-wide tile would mostly
//         compute padding): every invocation reads its rows of op(A) and columns of op(B)
//         straight from storage (cached alike on CPU rasterisers and GPUs at these sizes), with
//         no barriers.
// Either way each element is a sum over k in increasing order, so the result is deterministic
// and the same for both. Out-of-range rows and columns are not stored.
//
// Layouts, epilogues and the batching over models in z: common.wgsl (prepended).

@group(0) @binding(0) var<storage, read> lhs: array<f32>;
@group(0) @binding(1) var<storage, read> rhs: array<f32>;
// Invocations per side of the workgroup: 16 with SHARED, 8 or 4 without.
override SIDE: u32 = 16u;
// Stage K-slices in workgroup memory (see above).
override SHARED: bool = true;

override TILE_M: u32 = 4u * SIDE;
override TILE_N: u32 = 4u * SIDE;
const TILE_K: u32 = 16u;
const THREADS: u32 = 256u;

var<workgroup> tile_a: array<f32, 1024>;   // [TILE_K][TILE_M]
var<workgroup> tile_b: array<f32, 1024>;   // [TILE_K][TILE_N]

fn load_a(row: u32, kk: u32) -> f32 {
    if (row >= dims.m || kk >= dims.k) {
        return 0.0;
    }
    if (TRANSPOSE_A) {
        return lhs[base_a + kk * dims.lda + row];
    }
    return lhs[base_a + row * dims.lda + kk];
}

fn load_b(kk: u32, col: u32) -> f32 {
    if (kk >= dims.k || col >= dims.n) {
        return 0.0;
    }
    if (TRANSPOSE_B) {
        return rhs[base_b + col * dims.k + kk];
    }
    return rhs[base_b + kk * dims.n + col];
}

// Row `row` of op(A) and column `col` of op(B), clamped into range: the direct path computes
// out-of-range rows and columns from real data without branching, and never stores them.
fn a_at(row: u32, kk: u32) -> f32 {
    let r = min(row, dims.m - 1u);
    if (TRANSPOSE_A) {
        return lhs[base_a + kk * dims.lda + r];
    }
    return lhs[base_a + r * dims.lda + kk];
}

fn b_at(kk: u32, col: u32) -> f32 {
    let c = min(col, dims.n - 1u);
    if (TRANSPOSE_B) {
        return rhs[base_b + c * dims.k + kk];
    }
    return rhs[base_b + kk * dims.n + c];
}

@compute @workgroup_size(SIDE, SIDE)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let tid = lid.y * SIDE + lid.x;
    base_a = wid.z * dims.stride_a + dims.offset_a;
    base_b = wid.z * dims.stride_b;
    let row0 = wid.y * TILE_M;
    let col0 = wid.x * TILE_N;
    var acc: array<vec4<f32>, 4>;

    if (!SHARED) {
        let r0 = row0 + lid.y * 4u;
        let c0 = col0 + lid.x * 4u;
        for (var kk = 0u; kk < dims.k; kk++) {
            let a = vec4<f32>(a_at(r0, kk), a_at(r0 + 1u, kk), a_at(r0 + 2u, kk),
                              a_at(r0 + 3u, kk));
            let b = vec4<f32>(b_at(kk, c0), b_at(kk, c0 + 1u), b_at(kk, c0 + 2u),
                              b_at(kk, c0 + 3u));
            acc[0] += a.x * b;
            acc[1] += a.y * b;
            acc[2] += a.z * b;
            acc[3] += a.w * b;
        }
    }
    let slices = select(0u, (dims.k + TILE_K - 1u) / TILE_K, SHARED);
    for (var s = 0u; s < slices; s++) {
        let k0 = s * TILE_K;
        for (var e = 0u; e < 4u; e++) {
            let idx = tid + e * THREADS;
            var r: u32;
            var ka: u32;
            if (TRANSPOSE_A) {
                ka = idx / TILE_M;
                r = idx % TILE_M;
            } else {
                r = idx / TILE_K;
                ka = idx % TILE_K;
            }
            tile_a[ka * TILE_M + r] = load_a(row0 + r, k0 + ka);
            var c: u32;
            var kb: u32;
            if (TRANSPOSE_B) {
                c = idx / TILE_K;
                kb = idx % TILE_K;
            } else {
                kb = idx / TILE_N;
                c = idx % TILE_N;
            }
            tile_b[kb * TILE_N + c] = load_b(k0 + kb, col0 + c);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let ai = kk * TILE_M + lid.y * 4u;
            let bi = kk * TILE_N + lid.x * 4u;
            let a = vec4<f32>(tile_a[ai], tile_a[ai + 1u], tile_a[ai + 2u], tile_a[ai + 3u]);
            let b = vec4<f32>(tile_b[bi], tile_b[bi + 1u], tile_b[bi + 2u], tile_b[bi + 3u]);
            acc[0] += a.x * b;
            acc[1] += a.y * b;
            acc[2] += a.z * b;
            acc[3] += a.w * b;
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y * 4u + i;
        if (row >= dims.m) {
            break;
        }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x * 4u + j;
            if (col >= dims.n) {
                break;
            }
            store(wid.z, row, col, acc[i][j]);
        }
    }
}
