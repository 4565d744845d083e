// Inverted dropout (src/model/dropout.rs has the equations), one invocation per element of a
// [ROWS, COLS] batch (x: column, y: row, z: model), each model's rows STRIDE_ROWS apart:
//   m = scale if unit_interval(philox([c / 4, row, step, layer], seed)[c % 4]) >= p, else 0
// with `row` the batch row's index in its dataset (ROWS_IN_DATASET[r] when the key says the
// batch has them, else r).
// `forward`: with TRAINING, z = a = x * m (OUT_A, OUT_B); without, z = a = x.
// `backward`: from delta = dL/da of this layer (INPUT), writes
//   delta_before = (delta * m) * act'(z_before)        (BEFORE holds z_before; ACTIVATION is
// the layer before's) into OUT_A. The mask is drawn again, never stored.

struct DropoutDims {
    rows: u32,
    cols: u32,
    stride_rows: u32,
    layer: u32,
    p: f32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
}

struct MaskKey {
    step: u32,
    seed_lo: u32,
    seed_hi: u32,
    has_rows: u32,
}

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read> before: array<f32>;
@group(0) @binding(2) var<storage, read> rows_in_dataset: array<u32>;
@group(0) @binding(3) var<storage, read_write> out_a: array<f32>;
@group(0) @binding(4) var<storage, read_write> out_b: array<f32>;
@group(0) @binding(5) var<uniform> dims: DropoutDims;
@group(0) @binding(6) var<uniform> key: MaskKey;

override TRAINING: bool = true;

// What element (r, c) is multiplied by.
fn multiplier(r: u32, c: u32) -> f32 {
    var row = r;
    if (key.has_rows != 0u) {
        row = rows_in_dataset[r];
    }
    let words = philox4x32(
        vec4<u32>(c / 4u, row, key.step, dims.layer),
        vec2<u32>(key.seed_lo, key.seed_hi),
    );
    let u = unit_interval(words[c % 4u]);
    return select(0.0, dims.scale, u >= dims.p);
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let r = gid.y;
    if (c >= dims.cols || r >= dims.rows) {
        return;
    }
    let at = gid.z * dims.stride_rows + r * dims.cols + c;
    var value = input[at];
    if (TRAINING) {
        value = value * multiplier(r, c);
    }
    out_a[at] = value;
    out_b[at] = value;
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let r = gid.y;
    if (c >= dims.cols || r >= dims.rows) {
        return;
    }
    let at = gid.z * dims.stride_rows + r * dims.cols + c;
    out_a[at] = (input[at] * multiplier(r, c)) * activate_grad(before[at]);
}
