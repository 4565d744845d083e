//! Batch normalisation, forward (training or evaluation) and backward, one invocation per
//! column (`batch_norm.wgsl`, `batch_norm_backward.wgsl`, sharing `batch_norm_common.wgsl`;
//! equations in [`crate::model::BatchNorm`]):
//!
//! ```text
//! training:    OUT_A = y = γ ⊙ x̂ + β, OUT_B = act(y), x̂ from the batch's statistics, which
//!              the running statistics move towards
//! evaluation:  the same from the running statistics
//! backward:    ∂L/∂γ = Σ_r δ ⊙ x̂, ∂L/∂β = Σ_r δ (written or added),
//!              OUT = (γ/(N √(σ² + ε))) (N δ − Σ_r δ − x̂ Σ_r δ x̂) ⊙ act'_before(z_before)
//! ```
//!
//! Every column's statistics are summed over the rows in increasing order (no float atomics),
//! as the CPU engine sums them.

use super::binding::{Binding, BindingSet, read, read_write, uniform};
use super::dispatch::{Dispatch, Extent, Grid, KernelKind};
use super::shader::{Pipelines, module};
use crate::model::Activation;

const COMMON_WGSL: &str = include_str!("batch_norm_common.wgsl");
const FORWARD_WGSL: &str = include_str!("batch_norm.wgsl");
const BACKWARD_WGSL: &str = include_str!("batch_norm_backward.wgsl");

/// The bindings of `batch_norm.wgsl`: the input, the scale and shift, the running mean and
/// variance, the two outputs, the shape, and each model's frozen flag.
pub(crate) const FORWARD_BINDINGS: [Binding; 9] = [
    read("input"),
    read("weight"),
    read("bias"),
    read_write("running_mean"),
    read_write("running_var"),
    read_write("out_a"),
    read_write("out_b"),
    uniform("dims"),
    read("frozen"),
];

/// The bindings of `batch_norm_backward.wgsl`: the input, the scale, the upstream gradient,
/// the layer before's `z`, the input gradient, the scale's and shift's gradients, the shape.
pub(crate) const BACKWARD_BINDINGS: [Binding; 8] = [
    read("input"),
    read("weight"),
    read("upstream"),
    read("before"),
    read_write("out"),
    read_write("grad_weight"),
    read_write("grad_bias"),
    uniform("dims"),
];

/// Invocations per workgroup (one per column).
const GROUP: u32 = 64;

/// The uniform of both modules.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct BatchNormDims {
    pub rows: u32,
    pub cols: u32,
    /// Elements between consecutive models' `[batch, cols]` buffers.
    pub stride_rows: u32,
    /// Elements between consecutive models' parameters.
    pub stride_params: u32,
    /// Elements between consecutive models' running statistics.
    pub stride_stats: u32,
    /// `ε`, added to the variance.
    pub eps: f32,
    /// How far the running statistics move towards the batch's.
    pub momentum: f32,
    pub _pad: u32,
}

/// A batch norm's uniform as a function of the batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BatchNormShape {
    pub cols: u32,
    pub stride_rows: u32,
    pub stride_params: u32,
    pub stride_stats: u32,
    pub eps: f32,
    pub momentum: f32,
}

impl BatchNormShape {
    /// The uniform for a batch of `rows` rows.
    pub fn uniform(&self, rows: u32) -> BatchNormDims {
        BatchNormDims {
            rows,
            cols: self.cols,
            stride_rows: self.stride_rows,
            stride_params: self.stride_params,
            stride_stats: self.stride_stats,
            eps: self.eps,
            momentum: self.momentum,
            _pad: 0,
        }
    }
}

/// The sources of the forward module.
pub(crate) fn forward_sources() -> [&'static str; 3] {
    [crate::activation::wgsl(), COMMON_WGSL, FORWARD_WGSL]
}

/// The sources of the backward module.
pub(crate) fn backward_sources() -> [&'static str; 3] {
    [crate::activation::wgsl(), COMMON_WGSL, BACKWARD_WGSL]
}

/// The compiled batch norm.
pub(crate) struct BatchNormOp {
    forward_bindings: BindingSet<9>,
    backward_bindings: BindingSet<8>,
    forward_pipelines: Pipelines,
    backward_pipelines: Pipelines,
    forward_module: wgpu::ShaderModule,
    backward_module: wgpu::ShaderModule,
}

impl BatchNormOp {
    /// Compiles the modules on `device`.
    pub fn new(device: &wgpu::Device) -> Self {
        let forward_bindings = BindingSet::new(device, "batch norm", &FORWARD_BINDINGS);
        let backward_bindings = BindingSet::new(device, "batch norm backward", &BACKWARD_BINDINGS);
        Self {
            forward_pipelines: Pipelines::new(device, "batch norm", forward_bindings.layout()),
            backward_pipelines: Pipelines::new(
                device,
                "batch norm backward",
                backward_bindings.layout(),
            ),
            forward_module: module(device, "batch norm", &forward_sources()),
            backward_module: module(device, "batch norm backward", &backward_sources()),
            forward_bindings,
            backward_bindings,
        }
    }

    /// One invocation per column of `cols`, in every model.
    fn grid(cols: u32) -> Grid {
        Grid::Items {
            count: Extent::Fixed(cols),
            group: GROUP,
        }
    }

    /// The forward pass of a training step (`training`, moving the running statistics of the
    /// models not frozen) or of an evaluation, with the layer's `activation`, on `resources`
    /// ([`FORWARD_BINDINGS`]).
    pub fn forward(
        &self,
        training: bool,
        activation: Activation,
        cols: u32,
        resources: [wgpu::BindingResource<'_>; 9],
    ) -> Dispatch {
        let entry = if training { "training" } else { "evaluation" };
        Dispatch {
            kind: KernelKind::Norm,
            pipeline: self.forward_pipelines.get(
                "batch norm",
                || self.forward_module.clone(),
                entry,
                &activation.kernel_constants(),
            ),
            bind_group: self.forward_bindings.bind(resources),
            grid: Self::grid(cols),
        }
    }

    /// The backward pass, the gradients written or (`accumulate`) added, with the layer
    /// before's `activation`, on `resources` ([`BACKWARD_BINDINGS`]).
    pub fn backward(
        &self,
        accumulate: bool,
        activation: Activation,
        cols: u32,
        resources: [wgpu::BindingResource<'_>; 8],
    ) -> Dispatch {
        let [act, slope] = activation.kernel_constants();
        let constants = [act, slope, ("ACCUMULATE", f64::from(u8::from(accumulate)))];
        Dispatch {
            kind: KernelKind::Norm,
            pipeline: self.backward_pipelines.get(
                "batch norm backward",
                || self.backward_module.clone(),
                "backward",
                &constants,
            ),
            bind_group: self.backward_bindings.bind(resources),
            grid: Self::grid(cols),
        }
    }
}
