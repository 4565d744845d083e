//! Layer normalisation, forward and backward, one workgroup per row (`layer_norm.wgsl`;
//! equations in [`crate::model::LayerNorm`]):
//!
//! ```text
//! forward:   OUT_A = y = γ ⊙ x̂ + β                    OUT_B = act(y)
//! backward:  OUT_A = ∂L/∂x ⊙ act'_before(z_before)     OUT_B = δ ⊙ x̂
//!            ∂L/∂x = (g − mean(g) − x̂ · mean(g ⊙ x̂)) / √(σ² + ε),   g = δ ⊙ γ
//! ```
//!
//! Every row's statistics are reduced in a fixed order (no float atomics). The column sums of
//! `δ ⊙ x̂` and `δ` (the scale's and the shift's gradients) are the reduce op's.

use super::binding::{Binding, BindingSet, read, read_write, uniform};
use super::dispatch::{Dispatch, Extent, Grid, KernelKind};
use super::shader::{Pipelines, module};
use crate::model::Activation;

const LAYER_NORM_WGSL: &str = include_str!("layer_norm.wgsl");

/// The bindings of `layer_norm.wgsl`: the input `x`, the scale γ and shift β, the upstream
/// gradient `δ = ∂L/∂y` and the layer before's `z` (backward), the two outputs, the shape.
pub(crate) const BINDINGS: [Binding; 8] = [
    read("input"),
    read("weight"),
    read("bias"),
    read("upstream"),
    read("before"),
    read_write("out_a"),
    read_write("out_b"),
    uniform("dims"),
];

/// The uniform of `layer_norm.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct NormDims {
    pub rows: u32,
    pub cols: u32,
    /// Elements between consecutive models' `[batch, cols]` buffers.
    pub stride_rows: u32,
    /// Elements between consecutive models' parameters.
    pub stride_params: u32,
    /// `ε`, added to the variance.
    pub eps: f32,
    pub _pad: [u32; 3],
}

/// A layer norm's uniform as a function of the batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NormShape {
    pub cols: u32,
    pub stride_rows: u32,
    pub stride_params: u32,
    pub eps: f32,
}

impl NormShape {
    /// The uniform for a batch of `rows` rows.
    pub fn uniform(&self, rows: u32) -> NormDims {
        NormDims {
            rows,
            cols: self.cols,
            stride_rows: self.stride_rows,
            stride_params: self.stride_params,
            eps: self.eps,
            _pad: [0; 3],
        }
    }
}

/// The sources of the module.
pub(crate) fn sources() -> [&'static str; 2] {
    [crate::activation::wgsl(), LAYER_NORM_WGSL]
}

/// The compiled layer norm.
pub(crate) struct LayerNormOp {
    bindings: BindingSet<8>,
    pipelines: Pipelines,
    module: wgpu::ShaderModule,
}

impl LayerNormOp {
    /// Compiles the module on `device`.
    pub fn new(device: &wgpu::Device) -> Self {
        let bindings = BindingSet::new(device, "layer norm", &BINDINGS);
        Self {
            pipelines: Pipelines::new(device, "layer norm", bindings.layout()),
            module: module(device, "layer norm", &sources()),
            bindings,
        }
    }

    /// The forward pass (`backward` false, `activation` the layer's own) or the backward pass
    /// (`activation` the layer before's) over every row, on `resources` ([`BINDINGS`]).
    pub fn dispatch(
        &self,
        backward: bool,
        activation: Activation,
        resources: [wgpu::BindingResource<'_>; 8],
    ) -> Dispatch {
        let [act, slope] = activation.kernel_constants();
        let entry = if backward { "backward" } else { "forward" };
        Dispatch {
            kind: KernelKind::Norm,
            pipeline: self.pipelines.get(
                "layer norm",
                || self.module.clone(),
                entry,
                &[act, slope],
            ),
            bind_group: self.bindings.bind(resources),
            grid: Grid::Items {
                count: Extent::Batch,
                group: 1,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, Axis, s};

    use super::*;
    use crate::cpu::{layer_norm_backward, layer_norm_forward};
    use crate::gpu::ops::binding::range;
    use crate::gpu::testing::{assert_close, context, random, read, run, storage, uniform};
    use crate::model::{LayerNorm, NamedTensor};

    /// Elements between the models' parameters, and where the shift starts among them (both
    /// aligned as the engine's flat layout aligns tensors).
    const STRIDE: usize = 256;
    const SHIFT: usize = 128;

    /// Model `m`'s scale and shift, as the CPU engine holds them.
    fn own(params: &Array2<f32>, m: usize, cols: usize) -> [NamedTensor; 2] {
        let tensor = |name: &str, at: usize| NamedTensor {
            name: name.into(),
            shape: vec![cols],
            values: params.row(m).slice(s![at..at + cols]).to_vec(),
        };
        [tensor("norms.0.weight", 0), tensor("norms.0.bias", SHIFT)]
    }

    /// Two models' rows side by side, 9 × 70 each, with their own scales and shifts: the
    /// forward pass's `y` and `act(y)`, and the backward pass's `∂L/∂x ⊙ act'(z_before)` and the
    /// column sums of `δ ⊙ x̂` (the scale's gradient), against the CPU engine's.
    #[test]
    fn forward_and_backward_are_the_cpu_twins() {
        let ctx = context();
        let op = LayerNormOp::new(&ctx.device);
        let (rows, cols, models) = (9usize, 70usize, 2usize);
        let x = random(models * rows, cols, 1) * 3.0 + 0.5;
        let upstream = random(models * rows, cols, 2);
        let before = random(models * rows, cols, 3);
        let params = random(models, STRIDE, 4);
        let norm = LayerNorm {
            width: cols,
            eps: 1e-5,
            activation: Activation::Tanh,
        };
        let previous = Activation::Gelu;
        let shape = NormShape {
            cols: cols as u32,
            stride_rows: (rows * cols) as u32,
            stride_params: STRIDE as u32,
            eps: norm.eps,
        };
        let flat = |a: &Array2<f32>| storage(&ctx, a.as_slice().expect("contiguous"));
        let (x_buf, up_buf, before_buf, param_buf) =
            (flat(&x), flat(&upstream), flat(&before), flat(&params));
        let dims = uniform(&ctx, &shape.uniform(rows as u32));
        let len = models * rows * cols;
        let span = (STRIDE + cols) as u64;
        let outputs = |backward: bool| {
            let zeros = Array2::<f32>::zeros((models * rows, cols));
            let (out_a, out_b) = (flat(&zeros), flat(&zeros));
            let dispatch = op.dispatch(
                backward,
                if backward { previous } else { norm.activation },
                [
                    x_buf.as_entire_binding(),
                    range(&param_buf, 0, span),
                    range(&param_buf, SHIFT as u64, span),
                    up_buf.as_entire_binding(),
                    before_buf.as_entire_binding(),
                    out_a.as_entire_binding(),
                    out_b.as_entire_binding(),
                    dims.as_entire_binding(),
                ],
            );
            run(&ctx, &[dispatch], rows as u32, models as u32);
            let shaped = |v: Vec<f32>| Array2::from_shape_vec((models * rows, cols), v).unwrap();
            (
                shaped(read(&ctx, &out_a, len)),
                shaped(read(&ctx, &out_b, len)),
            )
        };
        let ((y, a), (dx, xhat_delta)) = (outputs(false), outputs(true));
        let values = |a: ndarray::ArrayView2<'_, f32>| a.iter().copied().collect::<Vec<_>>();
        for m in 0..models {
            let block = s![m * rows..(m + 1) * rows, ..];
            let own = own(&params, m, cols);
            let cpu = layer_norm_forward(&norm, &own, x.slice(block));
            assert_close("y", &values(y.slice(block)), &values(cpu.pre.view()));
            assert_close("act(y)", &values(a.slice(block)), &values(cpu.post.view()));
            let (grads, cpu_dx) =
                layer_norm_backward(&norm, &own, x.slice(block), upstream.slice(block));
            let mut cpu_dx = cpu_dx.expect("an input gradient");
            cpu_dx.zip_mut_with(&before.slice(block), |g, &z| *g *= previous.derivative(z));
            assert_close("∂L/∂x", &values(dx.slice(block)), &values(cpu_dx.view()));
            let scale_grad = xhat_delta.slice(block).sum_axis(Axis(0)).to_vec();
            assert_close("∂L/∂γ", &scale_grad, &grads[0]);
        }
    }
}
