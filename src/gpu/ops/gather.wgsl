// Gathers one batch from a dataset resident on the GPU: invocation (x, y) copies column x of
// source row INDICES[y] into row y of the batch buffers. Columns 0..INPUTS-1 are features; the
// rest are the targets: OUTPUTS float columns, or one class index.

struct GatherDims {
    rows: u32,
    inputs: u32,
    outputs: u32,
    class_targets: u32,
}

@group(0) @binding(0) var<storage, read> indices: array<u32>;
@group(0) @binding(1) var<storage, read> source_features: array<f32>;
@group(0) @binding(2) var<storage, read> source_dense: array<f32>;
@group(0) @binding(3) var<storage, read> source_classes: array<u32>;
@group(0) @binding(4) var<storage, read_write> features: array<f32>;
@group(0) @binding(5) var<storage, read_write> dense: array<f32>;
@group(0) @binding(6) var<storage, read_write> classes: array<u32>;
@group(0) @binding(7) var<uniform> dims: GatherDims;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.y;
    let col = gid.x;
    if (row >= dims.rows) {
        return;
    }
    let source = indices[row];
    if (col < dims.inputs) {
        features[row * dims.inputs + col] = source_features[source * dims.inputs + col];
        return;
    }
    let t = col - dims.inputs;
    if (dims.class_targets != 0u) {
        if (t == 0u) {
            classes[row] = source_classes[source];
        }
    } else if (t < dims.outputs) {
        dense[row * dims.outputs + t] = source_dense[source * dims.outputs + t];
    }
}
