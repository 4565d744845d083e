// Matrix product C[M,N] = op(A)[M,K] * op(B)[K,N] that shares rows of op(A) across a subgroup
// by shuffles instead of workgroup memory (prepended: the activations (src/activation/), one of
// operands/, which declares `lhs` and `rhs` and their loads lhs1/lhs4, rhs1/rhs4, one
// of results/, which declares C and `store_quad`, and common.wgsl). Each
// invocation stores its four columns of a row with one store_quad: one vec4 store per buffer
// where C is stored as vec4s, else element by element.
//
// A workgroup is WIDTH invocations in a row computing a (8 * ROW_GROUPS) x (4 * WIDTH) tile of C:
// every invocation owns four adjacent columns of all the tile's rows, as 8 * ROW_GROUPS vec4
// accumulators. K is walked four at a time. For each group of 8 rows, invocation `lane` (its
// subgroup index mod 8) loads one vec4 of op(A) (row `lane` of the group along K, or for a
// transposed A, four rows at one k) and every invocation then takes each of the 32 values it
// needs from the lane holding it with subgroupShuffle. Each invocation loads its op(B) columns
// itself. So per four steps of K an invocation makes ROW_GROUPS + 4 vec4 loads for
// 128 * ROW_GROUPS multiply-adds, with no barriers: on CPU rasterisers, which run an invocation
// per SIMD lane and pay per lane for every load, this is several times the arithmetic per load
// of workgroup-memory tiles. Needs subgroups of at least 8 invocations.
//
// Each element is acc + a * b summed over k in increasing order, the same arithmetic as
// tiled.wgsl's tiles, so every tile gives the same bits. Rows and columns past M and N are
// computed from clamped (real) data and never stored. Layouts (with LDA, LDC and the offsets),
// epilogues and the batching over models in z: common.wgsl.

// Invocations per workgroup: 4 * WIDTH columns of C. A multiple of 8.
override WIDTH: u32 = 64u;
// Groups of 8 rows per workgroup: 1 or 2.
override ROW_GROUPS: u32 = 2u;
// The operands are read as vec4s (operands/vec4.wgsl): requires K % 4 == 0 for a
// row-major A or a transposed B, M % 4 == 0 for a transposed A, N % 4 == 0 for a row-major B,
// and every operand stride a multiple of 4.
override VEC4: bool = false;

// op(A)[row, kk] and op(B)[kk, col], row and col clamped into range.
fn a_at(row: u32, kk: u32) -> f32 {
    let r = min(row, dims.m - 1u);
    if (TRANSPOSE_A) {
        return lhs1(base_a + kk * dims.lda + r);
    }
    return lhs1(base_a + r * dims.lda + kk);
}

fn b_at(kk: u32, col: u32) -> f32 {
    let c = min(col, dims.n - 1u);
    if (TRANSPOSE_B) {
        return rhs1(base_b + c * dims.k + kk);
    }
    return rhs1(base_b + kk * dims.n + c);
}

// The vec4 of op(A) this lane contributes for rows row0..row0+7 at k..k+3: row row0 + lane at
// k..k+3, or for a transposed A, rows row0 + 4 * (lane % 2) .. + 3 at k + lane / 2.
fn a_share(row0: u32, k: u32, lane: u32) -> vec4<f32> {
    if (TRANSPOSE_A) {
        let kk = k + lane / 2u;
        let r = row0 + 4u * (lane % 2u);
        if (VEC4) {
            return lhs4(base_a + kk * dims.lda + min(r, dims.m - 4u));
        }
        return vec4<f32>(a_at(r, kk), a_at(r + 1u, kk), a_at(r + 2u, kk), a_at(r + 3u, kk));
    }
    let r = min(row0 + lane, dims.m - 1u);
    if (VEC4) {
        return lhs4(base_a + r * dims.lda + k);
    }
    let at = base_a + r * dims.lda + k;
    return vec4<f32>(lhs1(at), lhs1(at + 1u), lhs1(at + 2u), lhs1(at + 3u));
}

// op(A)[row0 + r, k + kk] from the lane that loaded it with a_share.
fn a_from_share(share: vec4<f32>, r: u32, kk: u32) -> f32 {
    if (TRANSPOSE_A) {
        return subgroupShuffle(share[r % 4u], kk * 2u + r / 4u);
    }
    return subgroupShuffle(share[kk], r);
}

// op(B)[kk, col..col+3].
fn b_row(kk: u32, col: u32) -> vec4<f32> {
    if (VEC4 && !TRANSPOSE_B) {
        return rhs4(base_b + kk * dims.n + min(col, dims.n - 4u));
    }
    return vec4<f32>(b_at(kk, col), b_at(kk, col + 1u), b_at(kk, col + 2u), b_at(kk, col + 3u));
}

@compute @workgroup_size(WIDTH)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_invocation_id) subgroup_id: u32,
) {
    base_a = wid.z * dims.stride_a + dims.offset_a;
    base_b = wid.z * dims.stride_b;
    let lane = subgroup_id % 8u;
    let row0 = wid.y * 8u * ROW_GROUPS;
    let col = wid.x * 4u * WIDTH + lid.x * 4u;
    var acc: array<vec4<f32>, 16>;

    let k4 = dims.k / 4u * 4u;
    for (var k = 0u; k < k4; k += 4u) {
        var b: array<vec4<f32>, 4>;
        if (VEC4 && TRANSPOSE_B) {
            // Four columns of B along K, transposed into four rows of op(B).
            var cols: array<vec4<f32>, 4>;
            for (var j = 0u; j < 4u; j++) {
                cols[j] = rhs4(base_b + min(col + j, dims.n - 1u) * dims.k + k);
            }
            for (var kk = 0u; kk < 4u; kk++) {
                b[kk] = vec4<f32>(cols[0][kk], cols[1][kk], cols[2][kk], cols[3][kk]);
            }
        } else {
            for (var kk = 0u; kk < 4u; kk++) {
                b[kk] = b_row(k + kk, col);
            }
        }
        for (var g = 0u; g < ROW_GROUPS; g++) {
            let share = a_share(row0 + 8u * g, k, lane);
            for (var kk = 0u; kk < 4u; kk++) {
                for (var r = 0u; r < 8u; r++) {
                    let i = 8u * g + r;
                    acc[i] = acc[i] + a_from_share(share, r, kk) * b[kk];
                }
            }
        }
    }
    for (var k = k4; k < dims.k; k++) {
        let b = vec4<f32>(b_at(k, col), b_at(k, col + 1u), b_at(k, col + 2u), b_at(k, col + 3u));
        for (var g = 0u; g < ROW_GROUPS; g++) {
            let mine = a_at(row0 + 8u * g + lane, k);
            for (var r = 0u; r < 8u; r++) {
                let i = 8u * g + r;
                acc[i] = acc[i] + subgroupShuffle(mine, r) * b;
            }
        }
    }

    for (var i = 0u; i < 8u * ROW_GROUPS; i++) {
        if (row0 + i >= dims.m) {
            break;
        }
        store_quad(wid.z, row0 + i, col, acc[i]);
    }
}
