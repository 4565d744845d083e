// Inverted dropout (src/model/dropout.rs has the equations), one invocation per four
// consecutive elements of a row of a [ROWS, COLS] batch (x: the group of four columns, y: row,
// z: model), each model's rows STRIDE_ROWS apart:
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

// What the four elements (r, 4 group .. 4 group + 3) are multiplied by: one Philox draw gives
// the four units' words.
fn multipliers(r: u32, group: u32) -> vec4<f32> {
    var row = r;
    if (key.has_rows != 0u) {
        row = rows_in_dataset[r];
    }
    let words = philox4x32(
        vec4<u32>(group, row, key.step, dims.layer),
        vec2<u32>(key.seed_lo, key.seed_hi),
    );
    let u = vec4<f32>(
        unit_interval(words.x),
        unit_interval(words.y),
        unit_interval(words.z),
        unit_interval(words.w),
    );
    return select(vec4<f32>(0.0), vec4<f32>(dims.scale), u >= vec4<f32>(dims.p));
}

// One invocation per four consecutive elements of a row: x is the group of four, y the row.
@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let group = gid.x;
    let r = gid.y;
    if (group * 4u >= dims.cols || r >= dims.rows) {
        return;
    }
    var m = vec4<f32>(1.0);
    if (TRAINING) {
        m = multipliers(r, group);
    }
    let base = gid.z * dims.stride_rows + r * dims.cols;
    for (var lane = 0u; lane < 4u; lane++) {
        let c = group * 4u + lane;
        if (c < dims.cols) {
            var value = input[base + c];
            if (TRAINING) {
                value = value * m[lane];
            }
            out_a[base + c] = value;
            out_b[base + c] = value;
        }
    }
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let group = gid.x;
    let r = gid.y;
    if (group * 4u >= dims.cols || r >= dims.rows) {
        return;
    }
    let m = multipliers(r, group);
    let base = gid.z * dims.stride_rows + r * dims.cols;
    for (var lane = 0u; lane < 4u; lane++) {
        let c = group * 4u + lane;
        if (c < dims.cols) {
            out_a[base + c] = (input[base + c] * m[lane]) * activate_grad(before[base + c]);
        }
    }
}
