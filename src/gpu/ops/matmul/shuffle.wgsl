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
// Groups of 8 rows per workgroup: 1, 2 or 4.
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

// The accumulators of up to four groups of 8 rows, four columns each.
alias Accumulators = array<vec4<f32>, 32>;

// Four steps of K for the 8 rows of group g: acc[8g + r] += op(A)[row0 + 8g + r, k + kk] *
// op(B)[k + kk, col..col+3] for kk = 0..3, op(A)'s values taken from `share` (a_share).
fn accumulate_group(acc: ptr<function, Accumulators>, g: u32, share: vec4<f32>,
                    b: ptr<function, array<vec4<f32>, 4>>) {
    for (var kk = 0u; kk < 4u; kk++) {
        for (var r = 0u; r < 8u; r++) {
            (*acc)[8u * g + r] = (*acc)[8u * g + r] + a_from_share(share, r, kk) * (*b)[kk];
        }
    }
}

// One step of K for the 8 rows of group g, `mine` being op(A)[row0 + 8g + lane, k].
fn accumulate_group_step(acc: ptr<function, Accumulators>, g: u32, mine: f32, b: vec4<f32>) {
    for (var r = 0u; r < 8u; r++) {
        (*acc)[8u * g + r] = (*acc)[8u * g + r] + subgroupShuffle(mine, r) * b;
    }
}

@compute @workgroup_size(WIDTH)
fn main(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(subgroup_invocation_id) subgroup_id: u32,
) {
    base_a = wid.z * dims.stride_a + dims.offset_a;
    base_b = wid.z * dims.stride_b;
    let lane = subgroup_id % 8u;
    // Which tile of C. Consecutive workgroups (x fastest) take the tiles of one column of
    // tiles in turn, so that the columns of op(B) they share stay in cache (measured 1.5x at
    // 1024x1024x1024); with a transposed A, whose tile is then the scattered read, they take
    // the tiles of one row in turn, sharing it instead.
    var row_tile = wid.y;
    var col_tile = wid.x;
    if (!TRANSPOSE_A) {
        let tile = wid.y * groups.x + wid.x;
        row_tile = tile % groups.y;
        col_tile = tile / groups.y;
    }
    let row0 = row_tile * 8u * ROW_GROUPS;
    let col = col_tile * 4u * WIDTH + lid.x * 4u;
    var acc: Accumulators;

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
        // The groups written out rather than looped over: Mesa's compiler for CPUs leaves a
        // loop with a body this large rolled, and then keeps every accumulator in memory
        // instead of registers (measured 1.5-2x slower).
        accumulate_group(&acc, 0u, a_share(row0, k, lane), &b);
        if (ROW_GROUPS > 1u) {
            accumulate_group(&acc, 1u, a_share(row0 + 8u, k, lane), &b);
        }
        if (ROW_GROUPS > 2u) {
            accumulate_group(&acc, 2u, a_share(row0 + 16u, k, lane), &b);
            accumulate_group(&acc, 3u, a_share(row0 + 24u, k, lane), &b);
        }
    }
    for (var k = k4; k < dims.k; k++) {
        let b = vec4<f32>(b_at(k, col), b_at(k, col + 1u), b_at(k, col + 2u), b_at(k, col + 3u));
        accumulate_group_step(&acc, 0u, a_at(row0 + lane, k), b);
        if (ROW_GROUPS > 1u) {
            accumulate_group_step(&acc, 1u, a_at(row0 + 8u + lane, k), b);
        }
        if (ROW_GROUPS > 2u) {
            accumulate_group_step(&acc, 2u, a_at(row0 + 16u + lane, k), b);
            accumulate_group_step(&acc, 3u, a_at(row0 + 24u + lane, k), b);
        }
    }

    // Row by row: acc[0] is stored and the others move up one, so that every index is a
    // constant and the epilogue's code appears once (stored from acc[i], the loop would have to
    // be unrolled to keep the accumulators in registers, and unrolled it multiplies the
    // epilogue, which costs the compiler far more time than the moves cost the kernel).
    let rows = min(8u * ROW_GROUPS, dims.m - row0);
    for (var i = 0u; i < rows; i++) {
        store_quad(wid.z, row0 + i, col, acc[0]);
        for (var j = 0u; j + 1u < 8u * ROW_GROUPS; j++) {
            acc[j] = acc[j + 1u];
        }
    }
}
