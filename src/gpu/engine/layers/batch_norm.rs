//! Batch normalisation `i` of a pack ([`BatchNorm`]): its scale γ and shift β bound across every
//! model from the parameters (and their gradients), its running mean and variance from the
//! statistics buffer, and its dispatches, one invocation per column:
//!
//! ```text
//! training step:  z_i = γ ⊙ x̂ + β, a_i = act_i(z_i) (batch statistics; running ones move)
//! evaluation:     the same with the running statistics
//! backward:       ∂L/∂γ, ∂L/∂β (written or added), δ_{i−1} = ∂L/∂a_{i−1} ⊙ act'_{i−1}(z_{i−1})
//! ```

use crate::error::Result;
use crate::gpu::buffers::{FlatLayout, TensorSlice};
use crate::gpu::context::GpuContext;
use crate::gpu::engine::buffers::{LAYERS_HINT, PACK_HINT};
use crate::gpu::engine::recorder::{LayerBackward, Recorder, Shape};
use crate::gpu::ops::batch_norm::BatchNormShape;
use crate::gpu::ops::binding::range;
use crate::gpu::ops::dispatch::Dispatch;
use crate::model::{Activation, BatchNorm};

/// One batch norm of a pack.
pub(crate) struct BatchNormLayer {
    norm: BatchNorm,
    /// The activation of the layer before, whose derivative its backward pass applies.
    previous: Activation,
    /// Where its scale and shift sit in each model's parameters.
    weight: TensorSlice,
    bias: TensorSlice,
    /// Where its running mean and variance sit in each model's statistics.
    running_mean: TensorSlice,
    running_var: TensorSlice,
    models: u64,
    /// Elements between models' parameters and between their statistics.
    stride: u64,
    stats_stride: u64,
    max_batch: usize,
}

impl BatchNormLayer {
    /// Batch norm `norm` of block `block` (its tensors `norms.{block}.*`), after a layer whose
    /// activation is `previous`, its parameters laid out as `layout` and its running statistics
    /// as `stats`, for `models` models and batches of `max_batch` rows. Fails naming the tensor
    /// that does not fit one binding.
    pub fn new(
        ctx: &GpuContext,
        norm: BatchNorm,
        (block, previous): (usize, Activation),
        (layout, stats): (&FlatLayout, &FlatLayout),
        (models, max_batch): (usize, usize),
    ) -> Result<Self> {
        let count = models as u64;
        let hint = if models > 1 { PACK_HINT } else { LAYERS_HINT };
        let name = |what: &str| format!("norms.{block}.{what}");
        let (weight, bias) = (
            layout.tensor(&name("weight")).clone(),
            layout.tensor(&name("bias")).clone(),
        );
        let (running_mean, running_var) = (
            stats.tensor(&name("running_mean")).clone(),
            stats.tensor(&name("running_var")).clone(),
        );
        for (t, stride) in [
            (&weight, layout.total),
            (&bias, layout.total),
            (&running_mean, stats.total),
            (&running_var, stats.total),
        ] {
            ctx.check_fits(&t.name, ((count - 1) * stride + t.len) * 4, true, hint)?;
        }
        Ok(Self {
            norm,
            previous,
            weight,
            bias,
            running_mean,
            running_var,
            models: count,
            stride: layout.total,
            stats_stride: stats.total,
            max_batch,
        })
    }

    /// Shape uniforms its dispatches take: its forward passes' and its backward pass's.
    pub fn uniform_slots(&self) -> usize {
        2
    }

    /// `tensor` in `flat`, whose models are `stride` elements apart, in every model.
    fn bound<'a>(
        &self,
        flat: &'a wgpu::Buffer,
        tensor: &TensorSlice,
        stride: u64,
    ) -> wgpu::BindingResource<'a> {
        range(flat, tensor.offset, (self.models - 1) * stride + tensor.len)
    }

    /// The uniform, as a function of the batch.
    fn shape(&self) -> BatchNormShape {
        BatchNormShape {
            cols: self.norm.width as u32,
            stride_rows: (self.max_batch * self.norm.width) as u32,
            stride_params: self.stride as u32,
            stride_stats: self.stats_stride as u32,
            eps: self.norm.eps,
            momentum: self.norm.momentum,
        }
    }

    /// Layer `i`'s forward pass in a training step (batch statistics, the running ones moved)
    /// and in an evaluation (the running statistics).
    pub fn record_forward(
        &self,
        rec: &mut Recorder<'_>,
        i: usize,
    ) -> Result<(Vec<Dispatch>, Vec<Dispatch>)> {
        let buffers = rec.buffers;
        let own = &buffers.layers[i];
        let dims = rec.shape(Shape::BatchNorm(self.shape()));
        let pass = |training| {
            rec.kernels.batch_norm.forward(
                training,
                self.norm.activation,
                self.norm.width as u32,
                [
                    buffers.layer_input(i).as_entire_binding(),
                    self.bound(&buffers.params, &self.weight, self.stride),
                    self.bound(&buffers.params, &self.bias, self.stride),
                    self.bound(&buffers.stats, &self.running_mean, self.stats_stride),
                    self.bound(&buffers.stats, &self.running_var, self.stats_stride),
                    own.pre.as_entire_binding(),
                    own.post.as_entire_binding(),
                    dims.clone(),
                    buffers.frozen.as_entire_binding(),
                ],
            )
        };
        Ok((vec![pass(true)], vec![pass(false)]))
    }

    /// Layer `i`'s backward pass: the scale's and shift's gradients (written, or added) and
    /// `δ_{i−1}`.
    pub fn record_backward(&self, rec: &mut Recorder<'_>, i: usize) -> Result<LayerBackward> {
        let buffers = rec.buffers;
        let (own, before) = (&buffers.layers[i], &buffers.layers[i - 1]);
        let dims = rec.shape(Shape::BatchNorm(self.shape()));
        let pass = |accumulate| {
            rec.kernels.batch_norm.backward(
                accumulate,
                self.previous,
                self.norm.width as u32,
                [
                    buffers.layer_input(i).as_entire_binding(),
                    self.bound(&buffers.params, &self.weight, self.stride),
                    own.delta.as_entire_binding(),
                    before.pre.as_entire_binding(),
                    before.delta.as_entire_binding(),
                    self.bound(&buffers.grads, &self.weight, self.stride),
                    self.bound(&buffers.grads, &self.bias, self.stride),
                    dims.clone(),
                ],
            )
        };
        Ok(LayerBackward {
            write: vec![pass(false)],
            add: vec![pass(true)],
        })
    }
}
