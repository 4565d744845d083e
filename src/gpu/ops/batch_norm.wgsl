// Batch normalisation's forward pass (src/model/batch_norm.rs has the equations), one invocation
// per column c (x) and model (z), each model's rows STRIDE_ROWS apart:
//   `training`: the batch's mean and biased variance of column c; y = gamma ((x - mean) rstd)
//   + beta into OUT_A and act(y) into OUT_B for every row; then the running statistics move:
//   running_mean = (1 - m) running_mean + m mean, running_var = (1 - m) running_var
//   + m var N / (N - 1), unless the model is frozen (FROZEN[z]).
//   `evaluation`: the same with the running statistics, which stay as they are.

@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_a: array<f32>;
@group(0) @binding(6) var<storage, read_write> out_b: array<f32>;
@group(0) @binding(7) var<uniform> dims: BatchNormDims;
// 1 for each model no longer trained (frozen): its running statistics stay as they are.
@group(0) @binding(8) var<storage, read> frozen: array<u32>;

// y and act(y) of column c for every row, normalised with `mean` and `var`.
fn normalise(base: u32, params: u32, c: u32, mean: f32, var_: f32) {
    let rstd = 1.0 / sqrt(var_ + dims.eps);
    let g = weight[params + c];
    let b = bias[params + c];
    for (var r = 0u; r < dims.rows; r++) {
        let at = base + r * dims.cols + c;
        let y = g * ((input[at] - mean) * rstd) + b;
        out_a[at] = y;
        out_b[at] = activate(y);
    }
}

@compute @workgroup_size(64)
fn training(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= dims.cols) {
        return;
    }
    let base = gid.z * dims.stride_rows;
    let stats = column_statistics(base, c);
    normalise(base, gid.z * dims.stride_params, c, stats.x, stats.y);
    if (frozen[gid.z] != 0u) {
        return;
    }
    let at = gid.z * dims.stride_stats + c;
    let m = dims.momentum;
    let n = f32(dims.rows);
    running_mean[at] = (1.0 - m) * running_mean[at] + m * stats.x;
    running_var[at] = (1.0 - m) * running_var[at] + m * (stats.y * (n / (n - 1.0)));
}

@compute @workgroup_size(64)
fn evaluation(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= dims.cols) {
        return;
    }
    let at = gid.z * dims.stride_stats + c;
    normalise(gid.z * dims.stride_rows, gid.z * dims.stride_params, c, running_mean[at], running_var[at]);
}
