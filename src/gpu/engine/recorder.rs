//! What the pieces of a step are recorded against: the context, the kernels, the engine's
//! buffers and one block of shape uniforms, a slot per dispatch ([`Recorder::shape`]). Every
//! layer kind records its forward and backward dispatches through it
//! (`layers/`), and `plan.rs` the loss and clipping.

use super::buffers::Buffers;
use crate::error::Result;
use crate::gpu::buffers::UniformBlock;
use crate::gpu::context::GpuContext;
use crate::gpu::ops::Kernels;
use crate::gpu::ops::batch_norm::{BatchNormDims, BatchNormShape};
use crate::gpu::ops::dispatch::Dispatch;
use crate::gpu::ops::dropout::{DropoutDims, DropoutShape};
use crate::gpu::ops::layer_norm::{NormDims, NormShape};
use crate::gpu::ops::loss::{LossDims, LossShape};
use crate::gpu::ops::matmul::tuning::Product;
use crate::gpu::ops::matmul::{MatmulDims, MatmulShape, MatmulVariant};
use crate::gpu::ops::reduce::{ColumnsShape, ReduceDims};

/// What a dispatch's shape uniform holds, as a function of the batch.
#[derive(Debug, Clone, Copy)]
pub(super) enum Shape {
    Matmul(MatmulShape),
    Loss(LossShape),
    Columns(ColumnsShape),
    Norm(NormShape),
    Dropout(DropoutShape),
    BatchNorm(BatchNormShape),
}

impl Shape {
    /// Bytes of its uniform.
    pub(super) fn bytes(&self) -> u64 {
        let bytes = match self {
            Shape::Matmul(_) => std::mem::size_of::<MatmulDims>(),
            Shape::Loss(_) => std::mem::size_of::<LossDims>(),
            Shape::Columns(_) => std::mem::size_of::<ReduceDims>(),
            Shape::Norm(_) => std::mem::size_of::<NormDims>(),
            Shape::Dropout(_) => std::mem::size_of::<DropoutDims>(),
            Shape::BatchNorm(_) => std::mem::size_of::<BatchNormDims>(),
        };
        bytes as u64
    }
}

/// The largest shape uniform, in bytes.
pub(super) const MAX_SHAPE_BYTES: u64 = {
    let sizes = [
        std::mem::size_of::<MatmulDims>(),
        std::mem::size_of::<LossDims>(),
        std::mem::size_of::<ReduceDims>(),
        std::mem::size_of::<NormDims>(),
        std::mem::size_of::<DropoutDims>(),
        std::mem::size_of::<BatchNormDims>(),
    ];
    let mut max = 0;
    let mut i = 0;
    while i < sizes.len() {
        if sizes[i] > max {
            max = sizes[i];
        }
        i += 1;
    }
    max as u64
};

/// One layer's backward dispatches, in the two forms a step records.
pub(super) struct LayerBackward {
    /// Writing its tensors' gradients (a group's first batch).
    pub write: Vec<Dispatch>,
    /// Adding to them (a group's later batches).
    pub add: Vec<Dispatch>,
}

/// What the pieces of a step are recorded against, and the shapes they have taken.
pub(super) struct Recorder<'a> {
    pub ctx: &'a GpuContext,
    pub kernels: &'a Kernels,
    pub buffers: &'a Buffers,
    pub block: &'a UniformBlock,
    /// The shape of each slot taken so far, in slot order.
    pub shapes: Vec<Shape>,
}

impl<'a> Recorder<'a> {
    /// A slot for `shape`'s uniform, and its binding.
    pub fn shape(&mut self, shape: Shape) -> wgpu::BindingResource<'a> {
        self.shapes.push(shape);
        self.block.binding(self.shapes.len() - 1, shape.bytes())
    }

    /// The launch of `variant` over `shape` on `resources` and the shape's uniform `dims`, in
    /// the tile the context's tuning chose for `product` (the same product as the tuner saw
    /// it).
    pub fn matmul(
        &self,
        product: &Product,
        (variant, shape): (MatmulVariant, MatmulShape),
        resources: [wgpu::BindingResource<'_>; 5],
        dims: wgpu::BindingResource<'_>,
    ) -> Result<Dispatch> {
        let tile = self.ctx.product_tile(product)?;
        let [a, b, aux, c, pre] = resources;
        Ok(self
            .kernels
            .matmul
            .dispatch(variant, tile, &shape, [a, b, aux, c, pre, dims]))
    }
}
