// Column sums for bias gradients: one invocation per column c computes
//   OUT[c] = sum over r = 0..ROWS-1, in increasing r, of IN[r * COLS + c]
// (with ACCUMULATE, OUT[c] = OUT[c] + that sum: a later batch of a group whose gradients add up)
// so the result is deterministic (no float atomics). Batched over workgroup_id.z, the model
// index z of a pack: model z's IN starts at z * STRIDE_IN and its OUT at z * STRIDE_OUT.

struct ReduceDims {
    rows: u32,
    cols: u32,
    stride_in: u32,
    stride_out: u32,
}

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read_write> sums: array<f32>;
@group(0) @binding(2) var<uniform> dims: ReduceDims;

override ACCUMULATE: bool = false;

@compute @workgroup_size(64)
fn column_sums(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= dims.cols) {
        return;
    }
    let base = gid.z * dims.stride_in;
    var sum = 0.0;
    for (var r = 0u; r < dims.rows; r++) {
        sum += input[base + r * dims.cols + c];
    }
    let at = gid.z * dims.stride_out + c;
    if (ACCUMULATE) {
        sums[at] = sums[at] + sum;
    } else {
        sums[at] = sum;
    }
}
