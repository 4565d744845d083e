// The loss and its gradient, in two entry points. Each loss's own WGSL (src/loss/NAME.wgsl,
// with its equations in NAME.rs) is appended with `loss_row` and `loss_correct`, which call the
// one the LOSS override picks (src/loss/mod.rs).
//
// `rows`: one invocation per batch row b. It writes the row's summed loss to ROW_LOSS[b] and
// DELTA[b, :] = dL/dz for the output layer: the gradient of the mean loss with respect to the
// output, times act'(z) of the output layer's activation (fused). The mean is over GRAD_NORM:
// the normalizer of the batch's rows, or of a whole group of batches whose gradients add up
// into one optimizer step (src/accumulate.rs). Cross-entropy uses the
// max-shifted log-sum-exp; binary cross-entropy on logits uses max(x,0) - x*y + log1p(e^-|x|).
//
// It also writes ROW_CORRECT[b] = 1 when the row is classified right: for cross-entropy when
// the first largest output is the class (or the first largest soft target); for binary
// cross-entropy when every logit has the target's side of 0 (target > 0.5 means logit > 0);
// never for mse.
//
// `mean`: one workgroup of 64 invocations. Invocation t sums ROW_LOSS[t], ROW_LOSS[t+64], ...
// in order (and the correct flags alike), then a fixed tree adds the 64 partial sums into the
// batch's mean loss, L = sum / NORM. Invocation 0 then updates the METRICS words: [0] += L * ROWS
// (as f32 bits), [1] += ROWS, [2] += correct rows, and [4] = L (f32 bits; word 3 is the
// optimizer's non-finite flag). No atomics, so the values are the same every run.
//
// Both are batched over the z dimension, the model index z of a pack of models trained side by
// side on the same batch: model z's OUTPUT, PRE and DELTA start at z * STRIDE_OUT, its ROW_LOSS
// and ROW_CORRECT at z * STRIDE_ROWS, and its METRICS are METRICS[8z..8z+7].
// The targets are shared.

struct LossDims {
    rows: u32,
    cols: u32,
    class_targets: u32,
    _pad: u32,
    norm: f32,
    stride_out: u32,
    stride_rows: u32,
    grad_norm: f32,
}

@group(0) @binding(0) var<storage, read> output: array<f32>;
@group(0) @binding(1) var<storage, read> pre: array<f32>;
@group(0) @binding(2) var<storage, read> dense_targets: array<f32>;
@group(0) @binding(3) var<storage, read> class_targets: array<u32>;
@group(0) @binding(4) var<storage, read_write> delta: array<f32>;
@group(0) @binding(5) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(6) var<uniform> dims: LossDims;
@group(0) @binding(7) var<storage, read_write> row_correct: array<u32>;
@group(0) @binding(8) var<storage, read_write> metrics: array<u32>;

fn target_at(b: u32, c: u32) -> f32 {
    if (dims.class_targets != 0u) {
        return select(0.0, 1.0, class_targets[b] == c);
    }
    return dense_targets[b * dims.cols + c];
}

@compute @workgroup_size(64)
fn rows(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = gid.x;
    if (b >= dims.rows) {
        return;
    }
    let base = gid.z * dims.stride_out + b * dims.cols;
    let total = loss_row(b, base);
    let row = gid.z * dims.stride_rows + b;
    row_loss[row] = total;
    row_correct[row] = loss_correct(b, base);
}

const MEAN_GROUP: u32 = 64u;

var<workgroup> partial: array<f32, MEAN_GROUP>;
var<workgroup> partial_correct: array<u32, MEAN_GROUP>;

@compute @workgroup_size(MEAN_GROUP)
fn mean(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let base = wid.z * dims.stride_rows;
    var sum = 0.0;
    var right = 0u;
    for (var b = t; b < dims.rows; b += MEAN_GROUP) {
        sum += row_loss[base + b];
        right += row_correct[base + b];
    }
    partial[t] = sum;
    partial_correct[t] = right;
    workgroupBarrier();
    for (var width = MEAN_GROUP / 2u; width > 0u; width >>= 1u) {
        if (t < width) {
            partial[t] += partial[t + width];
            partial_correct[t] += partial_correct[t + width];
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        let mean = partial[0] / dims.norm;
        let m = 8u * wid.z;
        metrics[m + 4u] = bitcast<u32>(mean);
        metrics[m] = bitcast<u32>(bitcast<f32>(metrics[m]) + mean * f32(dims.rows));
        metrics[m + 1u] += dims.rows;
        metrics[m + 2u] += partial_correct[0];
    }
}
