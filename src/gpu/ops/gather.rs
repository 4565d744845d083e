//! Gathering a batch from a dataset kept on the device (`gather.wgsl`): for row indices `I`,
//!
//! ```text
//! FEATURES[b, :] = SOURCE_FEATURES[I[b], :]      TARGETS[b] = SOURCE_TARGETS[I[b]]
//! ```
//!
//! the targets being dense rows or class indices.

use super::binding::{Binding, BindingSet, read, read_write, uniform};
use super::dispatch::{Dispatch, Grid, KernelKind};
use super::shader::{Pipelines, module};

const GATHER_WGSL: &str = include_str!("gather.wgsl");

/// The bindings of `gather.wgsl`: the row indices, the dataset's features, dense targets and
/// classes, the batch's features, dense targets and classes, and the shape.
pub(crate) const BINDINGS: [Binding; 8] = [
    read("indices"),
    read("source_features"),
    read("source_dense"),
    read("source_classes"),
    read_write("features"),
    read_write("dense"),
    read_write("classes"),
    uniform("dims"),
];

/// Invocations per workgroup (one per column of a row).
const GROUP: u32 = 64;

/// The uniform of `gather.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct GatherDims {
    pub rows: u32,
    pub inputs: u32,
    pub outputs: u32,
    pub class_targets: u32,
}

/// The sources of the module.
pub(crate) fn sources() -> [&'static str; 1] {
    [GATHER_WGSL]
}

/// The gather kernel, compiled on first use.
pub(crate) struct GatherOp {
    device: wgpu::Device,
    bindings: BindingSet<8>,
    pipelines: Pipelines,
}

impl GatherOp {
    /// The layout on `device`.
    pub fn new(device: &wgpu::Device) -> Self {
        let bindings = BindingSet::new(device, "gather", &BINDINGS);
        Self {
            device: device.clone(),
            pipelines: Pipelines::new(device, "gather", bindings.layout()),
            bindings,
        }
    }

    /// The launch gathering each batch row's `inputs` features and `targets` target columns
    /// (1 for class indices) on `resources` ([`BINDINGS`]).
    pub fn dispatch(
        &self,
        inputs: usize,
        targets: usize,
        resources: [wgpu::BindingResource<'_>; 8],
    ) -> Dispatch {
        Dispatch {
            kind: KernelKind::Gather,
            pipeline: self.pipelines.get(
                "gather",
                || module(&self.device, "gather", &sources()),
                "main",
                &[],
            ),
            bind_group: self.bindings.bind(resources),
            grid: Grid::Rows {
                width: (inputs + targets) as u32,
                group: GROUP,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;
    use crate::gpu::testing::{classes, context, random, read, run, storage, uniform};
    use crate::loss::Targets;

    #[test]
    fn a_gathered_batch_is_the_datasets_subset() {
        let ctx = context();
        let op = GatherOp::new(&ctx.device);
        let indices = [3u32, 17, 0, 3, 9];
        let rows = indices.len();
        let (n, inputs, outputs) = (20, 5, 3);
        for class_targets in [false, true] {
            let targets = if class_targets {
                Targets::Classes(classes(n, 4, 2))
            } else {
                Targets::Dense(random(n, outputs, 2))
            };
            let data = Dataset::new("test", random(n, inputs, 1), targets).expect("rows match");
            let subset = data.subset(&indices.map(|i| i as usize));
            let features = data.features.as_slice().expect("contiguous");
            let (dense, labels) = match &data.targets {
                Targets::Dense(d) => (d.as_slice().expect("contiguous").to_vec(), vec![0u32]),
                Targets::Classes(c) => (vec![0.0], c.clone()),
            };
            let batch = [
                storage(&ctx, &vec![0.0f32; rows * inputs]),
                storage(&ctx, &vec![0.0f32; rows * outputs]),
                storage(&ctx, &vec![0u32; rows]),
            ];
            let dims = GatherDims {
                rows: rows as u32,
                inputs: inputs as u32,
                outputs: outputs as u32,
                class_targets: u32::from(class_targets),
            };
            let buffers = [
                storage(&ctx, &indices),
                storage(&ctx, features),
                storage(&ctx, &dense),
                storage(&ctx, &labels),
            ];
            let dims = uniform(&ctx, &dims);
            let width = if class_targets { 1 } else { outputs };
            let [i, f, d, c] = &buffers;
            let [bf, bd, bc] = &batch;
            let dispatch = op.dispatch(
                inputs,
                width,
                [i, f, d, c, bf, bd, bc, &dims].map(|b| b.as_entire_binding()),
            );
            run(&ctx, &[dispatch], rows as u32, 1);
            let expected = subset.features.as_slice().expect("contiguous");
            assert_eq!(read(&ctx, bf, rows * inputs), expected);
            match &subset.targets {
                Targets::Dense(d) => {
                    assert_eq!(
                        read(&ctx, bd, rows * outputs),
                        d.as_slice().expect("contiguous")
                    )
                }
                Targets::Classes(c) => {
                    let got: Vec<u32> = read(&ctx, bc, rows).iter().map(|v| v.to_bits()).collect();
                    assert_eq!(&got, c);
                }
            }
        }
    }
}
