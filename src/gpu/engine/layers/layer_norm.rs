//! Layer normalisation `i` of a pack ([`LayerNorm`]): its scale γ and shift β bound across
//! every model, a scratch buffer of `δ ⊙ x̂` for the scale's gradient, and its dispatches:
//!
//! ```text
//! forward:   z_i = γ ⊙ x̂ + β,  a_i = act_i(z_i)                 (one workgroup per row)
//! backward:  δ_{i−1} = ∂L/∂a_{i−1} ⊙ act'_{i−1}(z_{i−1}),  SCRATCH = δ_i ⊙ x̂
//!            ∂L/∂γ = Σ_rows SCRATCH,  ∂L/∂β = Σ_rows δ_i         (column sums, fixed order)
//! ```

use crate::error::Result;
use crate::gpu::buffers::{FlatLayout, TensorSlice};
use crate::gpu::context::GpuContext;
use crate::gpu::engine::buffers::{BATCH_HINT, LAYERS_HINT, PACK_BATCH_HINT, PACK_HINT};
use crate::gpu::engine::recorder::{LayerBackward, Recorder, Shape};
use crate::gpu::ops::binding::range;
use crate::gpu::ops::dispatch::Dispatch;
use crate::gpu::ops::layer_norm::NormShape;
use crate::gpu::ops::reduce::ColumnsShape;
use crate::model::{Activation, LayerNorm};

/// One layer norm of a pack.
pub(crate) struct LayerNormLayer {
    norm: LayerNorm,
    /// The activation of the layer before, whose derivative its backward pass applies.
    previous: Activation,
    /// Where its scale and shift sit in each model's parameters.
    weight: TensorSlice,
    bias: TensorSlice,
    /// `δ ⊙ x̂` of every row, every model's one after another.
    scratch: wgpu::Buffer,
    models: u64,
    stride: u64,
    max_batch: usize,
}

impl LayerNormLayer {
    /// Layer norm `norm` of block `block` (its tensors `norms.{block}.*`), after a layer whose
    /// activation is `previous`, laid out as `layout`, for `models` models and batches of
    /// `max_batch` rows. Fails naming the tensor or buffer that does not fit the device.
    pub fn new(
        ctx: &GpuContext,
        norm: LayerNorm,
        block: usize,
        previous: Activation,
        layout: &FlatLayout,
        (models, max_batch): (usize, usize),
    ) -> Result<Self> {
        let (count, stride) = (models as u64, layout.total);
        let hint = if models > 1 { PACK_HINT } else { LAYERS_HINT };
        let weight = layout.tensor(&format!("norms.{block}.weight")).clone();
        let bias = layout.tensor(&format!("norms.{block}.bias")).clone();
        for t in [&weight, &bias] {
            ctx.check_fits(&t.name, ((count - 1) * stride + t.len) * 4, true, hint)?;
        }
        let elements = count * max_batch as u64 * norm.width as u64;
        let shape = if models > 1 {
            format!("[{max_batch}, {}] × {models} models", norm.width)
        } else {
            format!("[{max_batch}, {}]", norm.width)
        };
        let scratch = ctx.storage_buffer(
            &format!("δ ⊙ x̂ of norms.{block} {shape}"),
            elements * 4,
            wgpu::BufferUsages::empty(),
            if models > 1 {
                PACK_BATCH_HINT
            } else {
                BATCH_HINT
            },
        )?;
        Ok(Self {
            norm,
            previous,
            weight,
            bias,
            scratch,
            models: count,
            stride,
            max_batch,
        })
    }

    /// Shape uniforms its dispatches take: the norm's forward and backward, and the column
    /// sums' (scale and shift).
    pub fn uniform_slots(&self) -> usize {
        3
    }

    /// `tensor` (or its gradient) in `flat`, in every model.
    fn bound<'a>(&self, flat: &'a wgpu::Buffer, tensor: &TensorSlice) -> wgpu::BindingResource<'a> {
        range(
            flat,
            tensor.offset,
            (self.models - 1) * self.stride + tensor.len,
        )
    }

    /// The norm's uniform, as a function of the batch.
    fn shape(&self) -> NormShape {
        NormShape {
            cols: self.norm.width as u32,
            stride_rows: (self.max_batch * self.norm.width) as u32,
            stride_params: self.stride as u32,
            eps: self.norm.eps,
        }
    }

    /// Layer `i`'s forward pass: `z_i = γ ⊙ x̂ + β`, `a_i = act_i(z_i)`.
    pub fn record_forward(&self, rec: &mut Recorder<'_>, i: usize) -> Result<Vec<Dispatch>> {
        let buffers = rec.buffers;
        let own = &buffers.layers[i];
        let dims = rec.shape(Shape::Norm(self.shape()));
        Ok(vec![rec.kernels.layer_norm.dispatch(
            false,
            self.norm.activation,
            [
                buffers.layer_input(i).as_entire_binding(),
                self.bound(&buffers.params, &self.weight),
                self.bound(&buffers.params, &self.bias),
                buffers.dummy_read.as_entire_binding(),
                buffers.dummy_read.as_entire_binding(),
                own.pre.as_entire_binding(),
                own.post.as_entire_binding(),
                dims,
            ],
        )])
    }

    /// Layer `i`'s backward pass: `δ_{i−1}` and `δ_i ⊙ x̂`, then the scale's and the shift's
    /// gradients as column sums (written, or added to the gradients).
    pub fn record_backward(&self, rec: &mut Recorder<'_>, i: usize) -> Result<LayerBackward> {
        let buffers = rec.buffers;
        let (own, before) = (&buffers.layers[i], &buffers.layers[i - 1]);
        let dims = rec.shape(Shape::Norm(self.shape()));
        let backward = rec.kernels.layer_norm.dispatch(
            true,
            self.previous,
            [
                buffers.layer_input(i).as_entire_binding(),
                self.bound(&buffers.params, &self.weight),
                buffers.dummy_read.as_entire_binding(),
                own.delta.as_entire_binding(),
                before.pre.as_entire_binding(),
                before.delta.as_entire_binding(),
                self.scratch.as_entire_binding(),
                dims,
            ],
        );
        let columns = ColumnsShape {
            cols: self.norm.width as u32,
            stride_in: (self.max_batch * self.norm.width) as u32,
            stride_out: self.stride as u32,
        };
        let dims = rec.shape(Shape::Columns(columns));
        let mut out = LayerBackward {
            write: vec![backward.clone()],
            add: vec![backward],
        };
        for (added, list) in [(false, &mut out.write), (true, &mut out.add)] {
            for (source, tensor) in [(&self.scratch, &self.weight), (&own.delta, &self.bias)] {
                list.push(rec.kernels.reduce.dispatch(
                    &columns,
                    added,
                    [
                        source.as_entire_binding(),
                        self.bound(&buffers.grads, tensor),
                        dims.clone(),
                    ],
                ));
            }
        }
        Ok(out)
    }
}
