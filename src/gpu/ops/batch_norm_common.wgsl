// What batch_norm.wgsl and batch_norm_backward.wgsl share: the shape, and a column's batch
// statistics summed over the rows in increasing order (the CPU engine's order).

struct BatchNormDims {
    rows: u32,
    cols: u32,
    // Elements between consecutive models' [batch, cols] buffers.
    stride_rows: u32,
    // Elements between consecutive models' parameters (and gradients).
    stride_params: u32,
    // Elements between consecutive models' running statistics.
    stride_stats: u32,
    eps: f32,
    momentum: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;

// Column `c`'s batch mean and biased variance, from the rows of the batch starting at `base`.
fn column_statistics(base: u32, c: u32) -> vec2<f32> {
    let n = f32(dims.rows);
    var sum = 0.0;
    for (var r = 0u; r < dims.rows; r++) {
        sum += input[base + r * dims.cols + c];
    }
    let mean = sum / n;
    var squares = 0.0;
    for (var r = 0u; r < dims.rows; r++) {
        let d = input[base + r * dims.cols + c] - mean;
        squares += d * d;
    }
    return vec2<f32>(mean, squares / n);
}
