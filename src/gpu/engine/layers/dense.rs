//! The dense layer `i` of a pack: `a_i = act_i(a_{i-1} · W_iᵀ + b_i)`, its weights cut into
//! blocks of rows that each fit a storage binding, and the products of its forward and backward
//! passes as shapes over the pack's buffers:
//!
//! ```text
//! forward, per block [r0, r1) of W_i's rows:
//!     a_i[:, r0..r1] = act_i(a_{i-1} · W_i[r0..r1]ᵀ + b_i[r0..r1])
//! weight gradient, per block:
//!     ∂L/∂W_i[r0..r1] = δ_i[:, r0..r1]ᵀ · a_{i-1}
//! bias gradient:
//!     ∂L/∂b_i = Σ_rows δ_i
//! input gradient, summed over the blocks:
//!     δ_{i-1} = (Σ_blocks δ_i[:, r0..r1] · W_i[r0..r1]) ⊙ act'_{i-1}(z_{i-1})
//! ```
//!
//! Every size is in elements; model `k`'s copy of a tensor is `k · stride` elements after model
//! 0's, so one binding of a tensor spans it in every model.

use crate::error::{Error, Result};
use crate::gpu::buffers::{FlatLayout, TensorSlice};
use crate::gpu::context::GpuContext;
use crate::gpu::engine::buffers::{LAYERS_HINT, PACK_HINT};
use crate::gpu::engine::recorder::{LayerBackward, Recorder, Shape};
use crate::gpu::ops::binding::range;
use crate::gpu::ops::dispatch::{Dispatch, Extent};
use crate::gpu::ops::matmul::tuning::Product;
use crate::gpu::ops::matmul::{Epilogue, MatmulShape, MatmulVariant};
use crate::gpu::ops::reduce::ColumnsShape;
use crate::model::{Activation, Dense, Layer, bias_name, weight_name};

/// `∂L/∂W = δᵀ · a`, written into the gradients.
const WEIGHT_GRADIENT: MatmulVariant = MatmulVariant {
    transpose_a: true,
    transpose_b: false,
    epilogue: Epilogue::Plain,
    activation: Activation::Identity,
};

/// The same, added to the gradients (a later batch of a group).
const WEIGHT_GRADIENT_ADDED: MatmulVariant = MatmulVariant {
    epilogue: Epilogue::Accumulate,
    ..WEIGHT_GRADIENT
};

/// One dense layer of a pack.
pub(crate) struct DenseLayer {
    /// Its widths and activation.
    pub layer: Dense,
    /// The activation of the layer before, whose derivative the input gradient applies; `None`
    /// for the first layer, whose input is the batch (and which has no input gradient).
    previous: Option<Layer>,
    /// Where its weight and bias sit in each model's parameters.
    weight: TensorSlice,
    bias: TensorSlice,
    /// Blocks `[r0, r1)` of its weight rows, each bound on its own.
    blocks: Vec<(usize, usize)>,
    /// Models in the pack, and elements between their parameters.
    models: u64,
    stride: u64,
    /// Rows of the largest batch: batch-sized buffers are this many rows apart between models.
    max_batch: usize,
}

impl DenseLayer {
    /// Dense layer `dense` of block `block` (its tensors `layers.{block}.*`), after `previous`
    /// (`None` for the first layer), laid out as `layout`, for `models` models and batches of
    /// `max_batch` rows. Fails naming the tensor when its bias, or one row of its weight, across
    /// every model does not fit one storage binding.
    pub fn new(
        ctx: &GpuContext,
        dense: Dense,
        block: usize,
        previous: Option<Layer>,
        layout: &FlatLayout,
        (models, max_batch): (usize, usize),
    ) -> Result<Self> {
        let hint = if models > 1 { PACK_HINT } else { LAYERS_HINT };
        let (count, stride) = (models as u64, layout.total);
        let span = |len: u64| (count - 1) * stride + len;
        // The bias is bound whole; the weight in blocks of rows that each fit a binding.
        let bias = layout.tensor(&bias_name(block));
        ctx.check_fits(&bias.name, span(bias.len) * 4, true, hint)?;
        let limits = ctx.limits();
        let weight = layout.tensor(&weight_name(block));
        ctx.check_fits(&weight.name, span(weight.len) * 4, false, hint)?;
        let blocks =
            row_blocks(&dense, weight, span(0), layout.align, limits).ok_or_else(|| {
                Error::BufferTooLarge {
                    tensor: if count > 1 {
                        format!("one row of {} in every model", weight.name)
                    } else {
                        format!("one row of {}", weight.name)
                    },
                    bytes: span(dense.inputs as u64) * 4,
                    limit_name: "max_storage_buffer_binding_size",
                    limit: limits.max_storage_buffer_binding_size,
                    hint,
                }
            })?;
        Ok(Self {
            layer: dense,
            previous,
            weight: weight.clone(),
            bias: bias.clone(),
            blocks,
            models: count,
            stride,
            max_batch,
        })
    }

    /// Layer `i`'s forward pass, `a_i = act_i(a_{i-1} · W_iᵀ + b_i)`, one product per block of
    /// W_i's rows (writing the block's columns of `a_i` and `z_i`).
    pub fn record_forward(&self, rec: &mut Recorder<'_>, i: usize) -> Result<Vec<Dispatch>> {
        let (layer, buffers) = (self, rec.buffers);
        let own = &buffers.layers[i];
        layer
            .blocks()
            .iter()
            .map(|&block| {
                let resources = [
                    buffers.layer_input(i).as_entire_binding(),
                    layer.weight_rows(&buffers.params, block),
                    layer.bias(&buffers.params),
                    own.post.as_entire_binding(),
                    own.pre.as_entire_binding(),
                ];
                let product = layer.forward(block);
                let dims = rec.shape(Shape::Matmul(product.1));
                let tuned = layer.product(product.0, &product.1, false);
                rec.matmul(&tuned, product, resources, dims)
            })
            .collect()
    }

    /// Layer `i`'s backward pass: per block of W_i's rows the weight gradient
    /// `∂L/∂W_i[r0..r1] = δ_i[:, r0..r1]ᵀ · a_{i-1}`, the bias gradient `∂L/∂b_i = Σ_rows δ_i`
    /// (both written, or added to the gradients), then but for the first layer the input
    /// gradient `δ_{i-1} = (Σ_blocks δ_i[:, r0..r1] · W_i[r0..r1]) ⊙ act'_{i-1}(z_{i-1})`.
    pub fn record_backward(&self, rec: &mut Recorder<'_>, i: usize) -> Result<LayerBackward> {
        let (layer, buffers) = (self, rec.buffers);
        let own = &buffers.layers[i];
        let mut backward = LayerBackward {
            write: Vec::new(),
            add: Vec::new(),
        };
        for &block in layer.blocks() {
            // The written and the added gradient share their shape.
            let dims = rec.shape(Shape::Matmul(layer.weight_gradient(block, false).1));
            for added in [false, true] {
                let resources = [
                    own.delta.as_entire_binding(),
                    buffers.layer_input(i).as_entire_binding(),
                    buffers.dummy_read.as_entire_binding(),
                    layer.weight_rows(&buffers.grads, block),
                    buffers.dummy_write.as_entire_binding(),
                ];
                let product = layer.weight_gradient(block, added);
                let tuned = layer.product(product.0, &product.1, true);
                let dispatch = rec.matmul(&tuned, product, resources, dims.clone())?;
                match added {
                    false => backward.write.push(dispatch),
                    true => backward.add.push(dispatch),
                }
            }
        }
        let columns = layer.bias_gradient();
        let dims = rec.shape(Shape::Columns(columns));
        for (added, list) in [(false, &mut backward.write), (true, &mut backward.add)] {
            list.push(rec.kernels.reduce.dispatch(
                &columns,
                added,
                [
                    own.delta.as_entire_binding(),
                    layer.bias(&buffers.grads),
                    dims.clone(),
                ],
            ));
        }
        if layer.has_input_gradient() {
            let before = &buffers.layers[i - 1];
            for (b, &block) in layer.blocks().iter().enumerate() {
                let resources = [
                    own.delta.as_entire_binding(),
                    layer.weight_rows(&buffers.params, block),
                    before.pre.as_entire_binding(),
                    before.delta.as_entire_binding(),
                    buffers.dummy_write.as_entire_binding(),
                ];
                let product = layer.input_gradient(b);
                let dims = rec.shape(Shape::Matmul(product.1));
                let tuned = layer.product(product.0, &product.1, true);
                let dispatch = rec.matmul(&tuned, product, resources, dims)?;
                backward.add.push(dispatch.clone());
                backward.write.push(dispatch);
            }
        }
        Ok(backward)
    }

    /// The blocks of weight rows.
    pub fn blocks(&self) -> &[(usize, usize)] {
        &self.blocks
    }

    /// Whether the layer passes a gradient to the layer before (every layer but the first).
    pub fn has_input_gradient(&self) -> bool {
        self.previous.is_some()
    }

    /// Shape uniforms its dispatches use: per block a forward, a weight gradient and (but for
    /// the first layer) an input gradient product, and the bias gradient.
    pub fn uniform_slots(&self) -> usize {
        let per_block = if self.has_input_gradient() { 3 } else { 2 };
        per_block * self.blocks.len() + 1
    }

    /// Elements between consecutive models' `[batch, width]` buffers.
    fn rows_stride(&self, width: usize) -> u32 {
        (self.max_batch * width) as u32
    }

    /// Elements between consecutive models' inputs to the layer: 0 for the batch, which every
    /// model shares.
    fn source_stride(&self) -> u32 {
        self.previous.map_or(0, |p| self.rows_stride(p.outputs()))
    }

    /// The forward product of block `(r0, r1)`: M = batch, N = r1 − r0, K = in.
    pub fn forward(&self, (r0, r1): (usize, usize)) -> (MatmulVariant, MatmulShape) {
        let variant = MatmulVariant {
            transpose_a: false,
            transpose_b: true,
            epilogue: Epilogue::BiasActivation,
            activation: self.layer.activation,
        };
        let params = self.stride as u32;
        let shape = MatmulShape {
            m: Extent::Batch,
            n: Extent::Fixed((r1 - r0) as u32),
            k: Extent::Fixed(self.layer.inputs as u32),
            strides: [
                self.source_stride(),
                params,
                self.rows_stride(self.layer.outputs),
                params,
            ],
            lda: self.layer.inputs as u32,
            offset_a: 0,
            ldc: self.layer.outputs as u32,
            offset_c: r0 as u32,
        };
        (variant, shape)
    }

    /// The weight gradient of block `(r0, r1)`, written or (`added`) added to the gradients:
    /// M = r1 − r0, N = in, K = batch.
    pub fn weight_gradient(
        &self,
        (r0, r1): (usize, usize),
        added: bool,
    ) -> (MatmulVariant, MatmulShape) {
        let variant = if added {
            WEIGHT_GRADIENT_ADDED
        } else {
            WEIGHT_GRADIENT
        };
        let shape = MatmulShape {
            m: Extent::Fixed((r1 - r0) as u32),
            n: Extent::Fixed(self.layer.inputs as u32),
            k: Extent::Batch,
            strides: [
                self.rows_stride(self.layer.outputs),
                self.source_stride(),
                self.stride as u32,
                0,
            ],
            lda: self.layer.outputs as u32,
            offset_a: r0 as u32,
            ldc: self.layer.inputs as u32,
            offset_c: 0,
        };
        (variant, shape)
    }

    /// Block `b`'s share of the input gradient: M = batch, N = in, K = r1 − r0. The first block
    /// writes δ_{i-1}, the others add to it, the last applies act'_{i-1}.
    ///
    /// # Panics
    /// For the first layer, which has no input gradient.
    pub fn input_gradient(&self, b: usize) -> (MatmulVariant, MatmulShape) {
        let previous = self.previous.expect("a layer before this one");
        let (r0, r1) = self.blocks[b];
        let variant = MatmulVariant {
            transpose_a: false,
            transpose_b: false,
            epilogue: match (b == 0, b + 1 == self.blocks.len()) {
                (true, true) => Epilogue::ActivationGrad,
                (true, false) => Epilogue::Plain,
                (false, false) => Epilogue::Accumulate,
                (false, true) => Epilogue::AccumulateActivationGrad,
            },
            activation: previous.activation(),
        };
        let shape = MatmulShape {
            m: Extent::Batch,
            n: Extent::Fixed(self.layer.inputs as u32),
            k: Extent::Fixed((r1 - r0) as u32),
            strides: [
                self.rows_stride(self.layer.outputs),
                self.stride as u32,
                self.rows_stride(self.layer.inputs),
                self.rows_stride(self.layer.inputs),
            ],
            lda: self.layer.outputs as u32,
            offset_a: r0 as u32,
            ldc: self.layer.inputs as u32,
            offset_c: 0,
        };
        (variant, shape)
    }

    /// The bias gradient, the column sums of δ_i.
    pub fn bias_gradient(&self) -> ColumnsShape {
        ColumnsShape {
            cols: self.layer.outputs as u32,
            stride_in: self.rows_stride(self.layer.outputs),
            stride_out: self.stride as u32,
        }
    }

    /// Each forward product as the tuner sees it (reading vec4s where every size and offset
    /// allows, at the largest batch).
    pub fn forward_products(&self) -> Vec<Product> {
        self.blocks
            .iter()
            .map(|&block| {
                let (variant, shape) = self.forward(block);
                self.product(variant, &shape, false)
            })
            .collect()
    }

    /// Each backward product as the tuner sees it: the weight gradients, then the input
    /// gradients.
    pub fn backward_products(&self) -> Vec<Product> {
        let weights = self.blocks.iter().map(|&block| {
            let (variant, shape) = self.weight_gradient(block, false);
            self.product(variant, &shape, true)
        });
        let inputs = (0..self.blocks.len())
            .filter(|_| self.has_input_gradient())
            .map(|b| {
                let (variant, shape) = self.input_gradient(b);
                self.product(variant, &shape, true)
            });
        weights.chain(inputs).collect()
    }

    /// `variant` over `shape` as the tuner sees it.
    pub fn product(&self, variant: MatmulVariant, shape: &MatmulShape, training: bool) -> Product {
        Product {
            variant,
            shape: shape.largest(self.max_batch),
            vec4: shape.vec4(variant).operands,
            models: self.models as usize,
            training,
        }
    }

    /// Rows `r0..r1` of the layer's weights (or their gradients) in `flat`, in every model.
    pub fn weight_rows<'a>(
        &self,
        flat: &'a wgpu::Buffer,
        (r0, r1): (usize, usize),
    ) -> wgpu::BindingResource<'a> {
        let inputs = self.layer.inputs as u64;
        let len = (r1 - r0) as u64 * inputs;
        range(
            flat,
            self.weight.offset + r0 as u64 * inputs,
            (self.models - 1) * self.stride + len,
        )
    }

    /// The layer's bias (or its gradient) in `flat`, in every model.
    pub fn bias<'a>(&self, flat: &'a wgpu::Buffer) -> wgpu::BindingResource<'a> {
        range(
            flat,
            self.bias.offset,
            (self.models - 1) * self.stride + self.bias.len,
        )
    }
}

/// Blocks of rows `[r0, r1)` of a layer's weights, each of which (across every model, the
/// models `before_last` elements apart) fits one storage binding and starts at an aligned
/// offset: one block when the whole tensor fits. `None` when not even one row does.
fn row_blocks(
    layer: &Dense,
    weight: &TensorSlice,
    before_last: u64,
    align: u64,
    limits: &wgpu::Limits,
) -> Option<Vec<(usize, usize)>> {
    let binding = limits.max_storage_buffer_binding_size / 4;
    let (rows, inputs) = (layer.outputs, layer.inputs as u64);
    if before_last + weight.len <= binding {
        return Some(vec![(0, rows)]);
    }
    let fitting = binding.checked_sub(before_last)? / inputs;
    // Block starts must stay aligned: a multiple of align / gcd(inputs, align) rows.
    let step = align / gcd(inputs, align);
    let per_block = (fitting - fitting % step) as usize;
    (per_block > 0).then(|| {
        (0..rows)
            .step_by(per_block)
            .map(|r0| (r0, (r0 + per_block).min(rows)))
            .collect()
    })
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}
