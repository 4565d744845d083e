//! Column sums in a fixed order, the bias gradients (`reduce.wgsl`): for an `[R, C]` input,
//!
//! ```text
//! OUT[c] = Σ_{r = 0..R} IN[r, c]                  (written)
//! OUT[c] = OUT[c] + Σ_{r = 0..R} IN[r, c]         (accumulated: a later batch of a group)
//! ```
//!
//! each sum taken over `r` in increasing order by one invocation, so a seed gives the same
//! bits (no float atomics).

use super::binding::{Binding, BindingSet, read, read_write, uniform};
use super::dispatch::{Dispatch, Extent, Grid, KernelKind};
use super::shader::{Pipelines, module};

const REDUCE_WGSL: &str = include_str!("reduce.wgsl");

/// The bindings of `reduce.wgsl`: the input, the sums, the shape.
pub(crate) const BINDINGS: [Binding; 3] = [read("input"), read_write("sums"), uniform("dims")];

/// Invocations per workgroup (one per column).
const GROUP: u32 = 64;

/// The uniform of `reduce.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ReduceDims {
    pub rows: u32,
    pub cols: u32,
    /// Elements between consecutive models' inputs.
    pub stride_in: u32,
    /// Elements between consecutive models' sums.
    pub stride_out: u32,
}

/// Column sums over the batch's rows, as a function of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ColumnsShape {
    pub cols: u32,
    pub stride_in: u32,
    pub stride_out: u32,
}

impl ColumnsShape {
    /// The uniform for a batch of `rows` rows.
    pub fn uniform(&self, rows: u32) -> ReduceDims {
        ReduceDims {
            rows,
            cols: self.cols,
            stride_in: self.stride_in,
            stride_out: self.stride_out,
        }
    }
}

/// The sources of the module.
pub(crate) fn sources() -> [&'static str; 1] {
    [REDUCE_WGSL]
}

/// The compiled column sums.
pub(crate) struct ReduceOp {
    bindings: BindingSet<3>,
    pipelines: Pipelines,
    module: wgpu::ShaderModule,
}

impl ReduceOp {
    /// Compiles the module on `device`.
    pub fn new(device: &wgpu::Device) -> Self {
        let bindings = BindingSet::new(device, "column sums", &BINDINGS);
        Self {
            pipelines: Pipelines::new(device, "column sums", bindings.layout()),
            module: module(device, "reduce", &sources()),
            bindings,
        }
    }

    /// The launch of the column sums of `shape`, written or (with `accumulate`) added to the
    /// sums, on `resources` ([`BINDINGS`]).
    pub fn dispatch(
        &self,
        shape: &ColumnsShape,
        accumulate: bool,
        resources: [wgpu::BindingResource<'_>; 3],
    ) -> Dispatch {
        let constants = [("ACCUMULATE", f64::from(u8::from(accumulate)))];
        Dispatch {
            kind: KernelKind::BiasGradient,
            pipeline: self.pipelines.get(
                "reduce",
                || self.module.clone(),
                "column_sums",
                &constants,
            ),
            bind_group: self.bindings.bind(resources),
            grid: Grid::Items {
                count: Extent::Fixed(shape.cols),
                group: GROUP,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Axis;

    use super::*;
    use crate::gpu::testing::{assert_close, context, random, read, run, storage, uniform};

    #[test]
    fn column_sums_are_ndarrays_written_or_added() {
        let ctx = context();
        let op = ReduceOp::new(&ctx.device);
        // Two models side by side, their inputs 13 × 70 apart and their sums 80 apart.
        let (rows, cols) = (13, 70);
        let input = random(2 * rows, cols, 1);
        let before = random(1, 160, 2);
        let shape = ColumnsShape {
            cols: cols as u32,
            stride_in: (rows * cols) as u32,
            stride_out: 80,
        };
        for accumulate in [false, true] {
            let sums = storage(&ctx, before.as_slice().expect("contiguous"));
            let source = storage(&ctx, input.as_slice().expect("contiguous"));
            let dims = uniform(&ctx, &shape.uniform(rows as u32));
            let dispatch = op.dispatch(
                &shape,
                accumulate,
                [
                    source.as_entire_binding(),
                    sums.as_entire_binding(),
                    dims.as_entire_binding(),
                ],
            );
            run(&ctx, &[dispatch], rows as u32, 2);
            let got = read(&ctx, &sums, 160);
            for model in 0..2 {
                let block = input.slice(ndarray::s![model * rows..(model + 1) * rows, ..]);
                let start = model * 80;
                let mut expected = block.sum_axis(Axis(0)).to_vec();
                if accumulate {
                    for (e, b) in expected.iter_mut().zip(before.row(0).iter().skip(start)) {
                        *e += b;
                    }
                }
                assert_close("column sums", &got[start..start + cols], &expected);
                assert_eq!(
                    got[start + cols..start + 80],
                    before.row(0).as_slice().expect("contiguous")[start + cols..start + 80]
                );
            }
        }
    }
}
