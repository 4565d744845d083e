//! Inverted dropout, forward and backward, one invocation per four elements of a row, which
//! one Philox draw serves (`dropout.wgsl`, with Philox4x32-10 in `philox.wgsl`; equations in
//! [`crate::model::Dropout`]):
//!
//! ```text
//! forward (training):    OUT_A = OUT_B = x ⊙ m        forward (evaluation): OUT_A = OUT_B = x
//! backward:              OUT_A = (δ ⊙ m) ⊙ act'_before(z_before)
//! ```
//!
//! The mask `m` is drawn again from its counter in the backward pass, never stored.

use super::binding::{Binding, BindingSet, read, read_write, uniform};
use super::dispatch::{Dispatch, Extent, Grid, KernelKind};
use super::shader::{Pipelines, module};
use crate::model::Activation;

const PHILOX_WGSL: &str = include_str!("philox.wgsl");
const DROPOUT_WGSL: &str = include_str!("dropout.wgsl");

/// The bindings of `dropout.wgsl`: the input (`x`, or `δ` backward), the layer before's `z`
/// (backward), each batch row's index in the dataset, the two outputs, the shape and the
/// step's mask key.
pub(crate) const BINDINGS: [Binding; 7] = [
    read("input"),
    read("before"),
    read("rows_in_dataset"),
    read_write("out_a"),
    read_write("out_b"),
    uniform("dims"),
    uniform("key"),
];

/// Invocations per workgroup, along a row (each four columns).
const GROUP: u32 = 64;

/// The uniform of `dropout.wgsl`'s shape.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct DropoutDims {
    pub rows: u32,
    pub cols: u32,
    /// Elements between consecutive models' `[batch, cols]` buffers.
    pub stride_rows: u32,
    /// The hidden layer whose masks these are.
    pub layer: u32,
    /// The probability of zeroing a unit.
    pub p: f32,
    /// What a kept unit is multiplied by.
    pub scale: f32,
    pub _pad: [u32; 2],
}

/// The step's mask key (`dropout.wgsl`'s `MaskKey`), written before each training submit.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct MaskKeyUniform {
    /// The optimizer step being computed, from 0 (mod 2³²).
    pub step: u32,
    /// The run's seed, low and high words.
    pub seed_lo: u32,
    pub seed_hi: u32,
    /// 1 when the batch rows' dataset indices are in the indices buffer, else 0.
    pub has_rows: u32,
}

/// A dropout's shape uniform as a function of the batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DropoutShape {
    pub cols: u32,
    pub stride_rows: u32,
    pub layer: u32,
    pub p: f32,
    pub scale: f32,
}

impl DropoutShape {
    /// The uniform for a batch of `rows` rows.
    pub fn uniform(&self, rows: u32) -> DropoutDims {
        DropoutDims {
            rows,
            cols: self.cols,
            stride_rows: self.stride_rows,
            layer: self.layer,
            p: self.p,
            scale: self.scale,
            _pad: [0; 2],
        }
    }
}

/// The sources of the module.
pub(crate) fn sources() -> [&'static str; 3] {
    [crate::activation::wgsl(), PHILOX_WGSL, DROPOUT_WGSL]
}

/// The compiled dropout.
pub(crate) struct DropoutOp {
    bindings: BindingSet<7>,
    pipelines: Pipelines,
    module: wgpu::ShaderModule,
}

/// Which of dropout's passes a dispatch runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum DropoutPass {
    /// The forward pass of a training step: masked.
    Training,
    /// The forward pass of an evaluation: the input passed through.
    Evaluation,
    /// The backward pass, with the layer before's activation.
    Backward(Activation),
}

impl DropoutOp {
    /// Compiles the module on `device`.
    pub fn new(device: &wgpu::Device) -> Self {
        let bindings = BindingSet::new(device, "dropout", &BINDINGS);
        Self {
            pipelines: Pipelines::new(device, "dropout", bindings.layout()),
            module: module(device, "dropout", &sources()),
            bindings,
        }
    }

    /// The launch of `pass` over the batch's `cols` columns, on `resources` ([`BINDINGS`]).
    pub fn dispatch(
        &self,
        pass: DropoutPass,
        cols: u32,
        resources: [wgpu::BindingResource<'_>; 7],
    ) -> Dispatch {
        let (entry, constants) = match pass {
            DropoutPass::Training => ("forward", vec![("TRAINING", 1.0)]),
            DropoutPass::Evaluation => ("forward", vec![("TRAINING", 0.0)]),
            DropoutPass::Backward(activation) => {
                ("backward", activation.kernel_constants().to_vec())
            }
        };
        Dispatch {
            kind: KernelKind::Dropout,
            pipeline: self
                .pipelines
                .get("dropout", || self.module.clone(), entry, &constants),
            bind_group: self.bindings.bind(resources),
            // One invocation per four columns: one Philox draw serves four units.
            grid: Grid::Tiles {
                m: Extent::Batch,
                n: Extent::Fixed(cols.div_ceil(4)),
                rows: 1,
                cols: GROUP,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;
    use crate::gpu::testing::{assert_close, context, random, read, run, storage, uniform};
    use crate::model::Dropout;

    /// Two models' 13 × 70 batches, the rows known by scattered dataset indices: the masks the
    /// GPU draws in training are the CPU's (`Dropout::kept`) bit for bit, evaluation passes the
    /// input through, and the backward pass masks and applies the activation derivative.
    #[test]
    fn masks_are_the_cpu_twins_and_evaluation_passes_through() {
        let ctx = context();
        let op = DropoutOp::new(&ctx.device);
        let (rows, cols, models) = (13usize, 70usize, 2usize);
        let dropout = Dropout {
            width: cols,
            p: 0.3,
        };
        let (seed, step, layer) = (0x1234_5678_9abc_def0u64, 41u64, 2u32);
        let indices: Vec<u32> = (0..rows as u32).map(|r| 1000 + 7 * r).collect();
        let x = random(models * rows, cols, 1);
        let before = random(models * rows, cols, 2);
        let shape = DropoutShape {
            cols: cols as u32,
            stride_rows: (rows * cols) as u32,
            layer,
            p: dropout.p,
            scale: dropout.scale(),
        };
        let key = MaskKeyUniform {
            step: step as u32,
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            has_rows: 1,
        };
        let flat = |a: &Array2<f32>| storage(&ctx, a.as_slice().expect("contiguous"));
        let (x_buf, before_buf) = (flat(&x), flat(&before));
        let rows_buf = storage(&ctx, &indices);
        let (dims, key) = (
            uniform(&ctx, &shape.uniform(rows as u32)),
            uniform(&ctx, &key),
        );
        let len = models * rows * cols;
        let previous = Activation::Tanh;
        let outputs = |pass: DropoutPass| {
            let zeros = Array2::<f32>::zeros((models * rows, cols));
            let (out_a, out_b) = (flat(&zeros), flat(&zeros));
            let dispatch = op.dispatch(
                pass,
                cols as u32,
                [
                    x_buf.as_entire_binding(),
                    before_buf.as_entire_binding(),
                    rows_buf.as_entire_binding(),
                    out_a.as_entire_binding(),
                    out_b.as_entire_binding(),
                    dims.as_entire_binding(),
                    key.as_entire_binding(),
                ],
            );
            run(&ctx, &[dispatch], rows as u32, models as u32);
            (read(&ctx, &out_a, len), read(&ctx, &out_b, len))
        };
        let multiplier = |i: usize| {
            let (r, c) = ((i / cols) % rows, i % cols);
            if dropout.kept(seed, step, layer, indices[r], c as u32) {
                dropout.scale()
            } else {
                0.0
            }
        };
        let x_values = x.as_slice().unwrap();
        let (z, a) = outputs(DropoutPass::Training);
        let expected: Vec<f32> = (0..len).map(|i| x_values[i] * multiplier(i)).collect();
        assert_eq!(z, expected, "training masks");
        assert_eq!(a, expected);
        let kept = (0..len).filter(|&i| multiplier(i) != 0.0).count() as f64 / len as f64;
        assert!((kept - 0.7).abs() < 0.05, "kept {kept}");
        let (z, _) = outputs(DropoutPass::Evaluation);
        assert_eq!(z, x_values, "evaluation passes the input through");
        let (delta, _) = outputs(DropoutPass::Backward(previous));
        let before_values = before.as_slice().unwrap();
        let expected: Vec<f32> = (0..len)
            .map(|i| x_values[i] * multiplier(i) * previous.derivative(before_values[i]))
            .collect();
        assert_close("δ before", &delta, &expected);
    }
}
