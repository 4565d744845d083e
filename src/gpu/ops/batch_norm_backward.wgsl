// Batch normalisation's backward pass in a training step, one invocation per column c (x) and
// model (z): the batch statistics again (the forward pass's arithmetic), then
//   dL/dgamma_c = sum_r delta x_hat     dL/dbeta_c = sum_r delta       (written, or with
//   ACCUMULATE added)
//   dL/dx = (gamma rstd / N) (N delta - sum_r delta - x_hat sum_r delta x_hat)
// times act'(z) of the layer before (BEFORE; ACTIVATION is that layer's) into OUT.

@group(0) @binding(2) var<storage, read> upstream: array<f32>;
@group(0) @binding(3) var<storage, read> before: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad_weight: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad_bias: array<f32>;
@group(0) @binding(7) var<uniform> dims: BatchNormDims;

// Whether the gradients are added to those accumulated (a group's later batches) or written.
override ACCUMULATE: bool = false;

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= dims.cols) {
        return;
    }
    let base = gid.z * dims.stride_rows;
    let stats = column_statistics(base, c);
    let rstd = 1.0 / sqrt(stats.y + dims.eps);
    var sum_delta = 0.0;
    var sum_delta_xhat = 0.0;
    for (var r = 0u; r < dims.rows; r++) {
        let at = base + r * dims.cols + c;
        let d = upstream[at];
        sum_delta += d;
        sum_delta_xhat += d * ((input[at] - stats.x) * rstd);
    }
    let p = gid.z * dims.stride_params + c;
    if (ACCUMULATE) {
        grad_weight[p] = grad_weight[p] + sum_delta_xhat;
        grad_bias[p] = grad_bias[p] + sum_delta;
    } else {
        grad_weight[p] = sum_delta_xhat;
        grad_bias[p] = sum_delta;
    }
    let n = f32(dims.rows);
    let scale = weight[p] * rstd / n;
    for (var r = 0u; r < dims.rows; r++) {
        let at = base + r * dims.cols + c;
        let xhat = (input[at] - stats.x) * rstd;
        out[at] = (scale * (n * upstream[at] - sum_delta - xhat * sum_delta_xhat)) * activate_grad(before[at]);
    }
}
