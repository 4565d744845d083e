// Layer normalisation of each row of a [ROWS, COLS] input x, as torch.nn.LayerNorm(COLS, eps)
// with a scale and a shift, then the layer's activation (the ACTIVATION override):
//   mu = (1/C) sum_c x[c]     var = (1/C) sum_c (x[c] - mu)^2     rstd = 1 / sqrt(var + eps)
//   xhat[c] = (x[c] - mu) * rstd      y[c] = gamma[c] * xhat[c] + beta[c]      a[c] = act(y[c])
// `forward` writes y (OUT_A) and a (OUT_B). `backward`, from delta = dL/dy (UPSTREAM), writes
//   dL/dx[c] = rstd * (g[c] - mean(g) - xhat[c] * mean(g * xhat))      g = delta * gamma
// times act'(z) of the layer before (BEFORE holds its z; ACTIVATION is that layer's) into
// OUT_A, and delta * xhat into OUT_B, whose column sums are dL/dgamma.
//
// One workgroup of 64 invocations per row (workgroup_id.x) and model (workgroup_id.z).
// Invocation t sums the columns t, t + 64, ... in increasing order, and invocation 0 adds the
// 64 partial sums in order: no atomics, the same bits every run; the backward pass recomputes the
// statistics with the same arithmetic as the forward pass.

struct NormDims {
    rows: u32,
    cols: u32,
    // Elements between consecutive models' [batch, cols] buffers.
    stride_rows: u32,
    // Elements between consecutive models' parameters.
    stride_params: u32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> upstream: array<f32>;
@group(0) @binding(4) var<storage, read> before: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_a: array<f32>;
@group(0) @binding(6) var<storage, read_write> out_b: array<f32>;
@group(0) @binding(7) var<uniform> dims: NormDims;

var<workgroup> partial: array<f32, 64>;
var<workgroup> partial_b: array<f32, 64>;

// The sum of `value` over the workgroup, in every invocation: invocation 0 adds the 64
// partial sums in order (three barriers, where a tree takes eight).
fn reduce(t: u32, value: f32) -> f32 {
    partial[t] = value;
    workgroupBarrier();
    if (t == 0u) {
        var sum = 0.0;
        for (var i = 0u; i < 64u; i++) {
            sum += partial[i];
        }
        partial[0] = sum;
    }
    workgroupBarrier();
    let total = partial[0];
    workgroupBarrier();
    return total;
}

// The sums of `a` and of `b` over the workgroup, each in the order of `reduce`.
fn reduce2(t: u32, a: f32, b: f32) -> vec2<f32> {
    partial[t] = a;
    partial_b[t] = b;
    workgroupBarrier();
    if (t == 0u) {
        var sum_a = 0.0;
        var sum_b = 0.0;
        for (var i = 0u; i < 64u; i++) {
            sum_a += partial[i];
            sum_b += partial_b[i];
        }
        partial[0] = sum_a;
        partial_b[0] = sum_b;
    }
    workgroupBarrier();
    let total = vec2<f32>(partial[0], partial_b[0]);
    workgroupBarrier();
    return total;
}

// The row's mean and 1 / sqrt(var + eps).
fn statistics(t: u32, base: u32) -> vec2<f32> {
    let n = f32(dims.cols);
    var sum = 0.0;
    for (var c = t; c < dims.cols; c += 64u) {
        sum += input[base + c];
    }
    let mean = reduce(t, sum) / n;
    var squares = 0.0;
    for (var c = t; c < dims.cols; c += 64u) {
        let d = input[base + c] - mean;
        squares += d * d;
    }
    let var_ = reduce(t, squares) / n;
    return vec2<f32>(mean, 1.0 / sqrt(var_ + dims.eps));
}

@compute @workgroup_size(64)
fn forward(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let row = wid.x;
    if (row >= dims.rows) {
        return;
    }
    let base = wid.z * dims.stride_rows + row * dims.cols;
    let params = wid.z * dims.stride_params;
    let stats = statistics(t, base);
    for (var c = t; c < dims.cols; c += 64u) {
        let xhat = (input[base + c] - stats.x) * stats.y;
        let y = weight[params + c] * xhat + bias[params + c];
        out_a[base + c] = y;
        out_b[base + c] = activate(y);
    }
}

@compute @workgroup_size(64)
fn backward(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let row = wid.x;
    if (row >= dims.rows) {
        return;
    }
    let base = wid.z * dims.stride_rows + row * dims.cols;
    let params = wid.z * dims.stride_params;
    let stats = statistics(t, base);
    var sum_g = 0.0;
    var sum_gx = 0.0;
    for (var c = t; c < dims.cols; c += 64u) {
        let xhat = (input[base + c] - stats.x) * stats.y;
        let g = upstream[base + c] * weight[params + c];
        sum_g += g;
        sum_gx += g * xhat;
    }
    let n = f32(dims.cols);
    let sums = reduce2(t, sum_g, sum_gx);
    let mean_g = sums.x / n;
    let mean_gx = sums.y / n;
    for (var c = t; c < dims.cols; c += 64u) {
        let xhat = (input[base + c] - stats.x) * stats.y;
        let delta = upstream[base + c];
        let g = delta * weight[params + c];
        let dx = (g - mean_g - xhat * mean_gx) * stats.y;
        out_a[base + c] = dx * activate_grad(before[base + c]);
        out_b[base + c] = delta * xhat;
    }
}
