//! A step recorded piece by piece, once: each dense layer's forward dispatches
//! ([`Recorder::forward_layer`]), the loss, each layer's backward dispatches, last layer first
//! ([`Recorder::backward_layer`]), and clipping; the optimizer update is recorded apart
//! (`update.rs`), as freezing a model records it again. Every dispatch has its own slot in one
//! block of shape uniforms, rewritten when the batch's rows change ([`Uniforms::prepare`]).

use super::buffers::Buffers;
use super::dense::DenseLayer;
use crate::engine::PackSetup;
use crate::error::Result;
use crate::gpu::buffers::{FlatLayout, UniformBlock};
use crate::gpu::context::GpuContext;
use crate::gpu::ops::Kernels;
use crate::gpu::ops::binding::range;
use crate::gpu::ops::dispatch::Dispatch;
use crate::gpu::ops::loss::{LossDims, LossShape};
use crate::gpu::ops::matmul::{MatmulDims, MatmulShape, MatmulVariant};
use crate::gpu::ops::reduce::{ColumnsShape, ReduceDims};

/// What a dispatch's shape uniform holds, as a function of the batch.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Matmul(MatmulShape),
    Loss(LossShape),
    Columns(ColumnsShape),
}

impl Shape {
    /// Bytes of its uniform.
    fn bytes(&self) -> u64 {
        let bytes = match self {
            Shape::Matmul(_) => std::mem::size_of::<MatmulDims>(),
            Shape::Loss(_) => std::mem::size_of::<LossDims>(),
            Shape::Columns(_) => std::mem::size_of::<ReduceDims>(),
        };
        bytes as u64
    }
}

/// The largest shape uniform, in bytes.
const MAX_SHAPE_BYTES: u64 = {
    let sizes = [
        std::mem::size_of::<MatmulDims>(),
        std::mem::size_of::<LossDims>(),
        std::mem::size_of::<ReduceDims>(),
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

/// The shape uniforms of every dispatch, and the optimizer coefficients' bytes.
pub(super) struct Uniforms {
    shapes: Vec<Shape>,
    block: UniformBlock,
    /// Rows, target kind and group rows the shape uniforms currently describe.
    current: Option<(u32, bool, usize)>,
    /// Each model's optimizer coefficients, rewritten each step (kept to allocate once).
    pub coefficient_bytes: Vec<u8>,
}

impl Uniforms {
    /// Rewrites and uploads the shape uniforms when the batch's row count, target kind or
    /// group changed: the loss divides each row's output gradient by `N(group_rows)`.
    pub fn prepare(
        &mut self,
        queue: &wgpu::Queue,
        rows: u32,
        class_targets: bool,
        group_rows: usize,
    ) {
        if self.current == Some((rows, class_targets, group_rows)) {
            return;
        }
        for (slot, shape) in self.shapes.iter().enumerate() {
            let block = &mut self.block;
            match shape {
                Shape::Matmul(s) => block.set(slot, bytemuck::bytes_of(&s.uniform(rows))),
                Shape::Loss(s) => block.set(
                    slot,
                    bytemuck::bytes_of(&s.uniform(rows, class_targets, group_rows)),
                ),
                Shape::Columns(s) => block.set(slot, bytemuck::bytes_of(&s.uniform(rows))),
            }
        }
        self.block.upload(queue);
        self.current = Some((rows, class_targets, group_rows));
    }

    /// Whether the uniforms last described class-index targets.
    pub fn class_targets(&self) -> bool {
        self.current.is_some_and(|(_, classes, _)| classes)
    }
}

/// The recorded dispatches of a step, piece by piece.
pub(super) struct Plan {
    /// Every layer's forward products, first layer first.
    pub forward: Vec<Dispatch>,
    /// Loss rows and mean, accumulating the training metrics.
    pub loss_train: Vec<Dispatch>,
    /// Loss rows and mean, accumulating the evaluation metrics.
    pub loss_eval: Vec<Dispatch>,
    /// Weight, bias and input gradients, last layer first, the weight and bias gradients
    /// written into the gradient buffer (a group's first batch).
    pub backward: Vec<Dispatch>,
    /// The same, the weight and bias gradients added to the gradient buffer (a group's later
    /// batches).
    pub backward_accumulate: Vec<Dispatch>,
    /// Clipping by global norm over (the first binding's worth of) every model's gradients.
    pub clip: Dispatch,
    /// Clipping in chunks, when the gradients do not fit one binding (recorded when clipping
    /// is turned on): each chunk's sum of squares, then each model's scale.
    pub clip_chunked: Vec<Dispatch>,
    /// The fused optimizer update over the models not frozen, one dispatch per bindable chunk.
    pub update: Vec<Dispatch>,
}

impl Plan {
    /// Records every piece of a step of `setup`'s `layers` over `buffers`, with their shape
    /// uniforms; the update is recorded apart (`update.rs`).
    pub fn record(
        ctx: &GpuContext,
        setup: &PackSetup,
        layout: &FlatLayout,
        buffers: &Buffers,
        layers: &[DenseLayer],
        max_batch: usize,
    ) -> Result<(Self, Uniforms)> {
        // One uniform per dispatch: the layers' and the loss's.
        let slots = layers.iter().map(DenseLayer::uniform_slots).sum::<usize>() + 1;
        let block = UniformBlock::new(
            ctx,
            "dispatch shapes",
            slots,
            MAX_SHAPE_BYTES,
            u64::from(ctx.limits().min_uniform_buffer_offset_alignment),
        );
        let mut recorder = Recorder {
            ctx,
            kernels: ctx.kernels(),
            buffers,
            layers,
            block: &block,
            shapes: Vec::new(),
        };
        let mut forward = Vec::new();
        for i in 0..layers.len() {
            forward.extend(recorder.forward_layer(i)?);
        }
        let [loss_train, loss_eval] = recorder.loss(setup, max_batch);
        let (mut backward, mut backward_accumulate) = (Vec::new(), Vec::new());
        for i in (0..layers.len()).rev() {
            let layer = recorder.backward_layer(i)?;
            backward.extend(layer.write);
            backward_accumulate.extend(layer.add);
        }
        let clip = recorder.clip(layout, setup.members.len() as u64);
        let shapes = recorder.shapes;
        debug_assert!(shapes.len() <= slots);
        let plan = Self {
            forward,
            loss_train,
            loss_eval,
            backward,
            backward_accumulate,
            clip,
            clip_chunked: Vec::new(),
            update: Vec::new(),
        };
        let uniforms = Uniforms {
            shapes,
            block,
            current: None,
            coefficient_bytes: Vec::new(),
        };
        Ok((plan, uniforms))
    }
}

/// One layer's backward dispatches, in the two forms a step records.
struct Backward {
    /// Writing the weight and bias gradients.
    write: Vec<Dispatch>,
    /// Adding to them.
    add: Vec<Dispatch>,
}

/// What the pieces of a step are recorded against, and the shapes they have taken.
struct Recorder<'a> {
    ctx: &'a GpuContext,
    kernels: &'a Kernels,
    buffers: &'a Buffers,
    layers: &'a [DenseLayer],
    block: &'a UniformBlock,
    shapes: Vec<Shape>,
}

impl<'a> Recorder<'a> {
    /// A slot for `shape`'s uniform, and its binding.
    fn shape(&mut self, shape: Shape) -> wgpu::BindingResource<'a> {
        self.shapes.push(shape);
        self.block.binding(self.shapes.len() - 1, shape.bytes())
    }

    /// The launch of `variant` over `shape` on `resources` and the shape's uniform `dims`, in
    /// the tile the context's tuning chose for it.
    fn matmul(
        &self,
        layer: &DenseLayer,
        (variant, shape): (MatmulVariant, MatmulShape),
        training: bool,
        resources: [wgpu::BindingResource<'_>; 5],
        dims: wgpu::BindingResource<'_>,
    ) -> Result<Dispatch> {
        let tile = self
            .ctx
            .product_tile(&layer.product(variant, &shape, training))?;
        let [a, b, aux, c, pre] = resources;
        Ok(self
            .kernels
            .matmul
            .dispatch(variant, tile, &shape, [a, b, aux, c, pre, dims]))
    }

    /// Layer `i`'s forward pass, `a_i = act_i(a_{i-1} · W_iᵀ + b_i)`, one product per block of
    /// W_i's rows (writing the block's columns of `a_i` and `z_i`).
    fn forward_layer(&mut self, i: usize) -> Result<Vec<Dispatch>> {
        let (layer, buffers) = (&self.layers[i], self.buffers);
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
                let dims = self.shape(Shape::Matmul(product.1));
                self.matmul(layer, product, false, resources, dims)
            })
            .collect()
    }

    /// Layer `i`'s backward pass: per block of W_i's rows the weight gradient
    /// `∂L/∂W_i[r0..r1] = δ_i[:, r0..r1]ᵀ · a_{i-1}`, the bias gradient `∂L/∂b_i = Σ_rows δ_i`
    /// (both written, or added to the gradients), then but for the first layer the input
    /// gradient `δ_{i-1} = (Σ_blocks δ_i[:, r0..r1] · W_i[r0..r1]) ⊙ act'_{i-1}(z_{i-1})`.
    fn backward_layer(&mut self, i: usize) -> Result<Backward> {
        let (layer, buffers) = (&self.layers[i], self.buffers);
        let own = &buffers.layers[i];
        let mut backward = Backward {
            write: Vec::new(),
            add: Vec::new(),
        };
        for &block in layer.blocks() {
            // The written and the added gradient share their shape.
            let dims = self.shape(Shape::Matmul(layer.weight_gradient(block, false).1));
            for added in [false, true] {
                let resources = [
                    own.delta.as_entire_binding(),
                    buffers.layer_input(i).as_entire_binding(),
                    buffers.dummy_read.as_entire_binding(),
                    layer.weight_rows(&buffers.grads, block),
                    buffers.dummy_write.as_entire_binding(),
                ];
                let product = layer.weight_gradient(block, added);
                let dispatch = self.matmul(layer, product, true, resources, dims.clone())?;
                match added {
                    false => backward.write.push(dispatch),
                    true => backward.add.push(dispatch),
                }
            }
        }
        let columns = layer.bias_gradient();
        let dims = self.shape(Shape::Columns(columns));
        for (added, list) in [(false, &mut backward.write), (true, &mut backward.add)] {
            list.push(self.kernels.reduce.dispatch(
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
                let dims = self.shape(Shape::Matmul(product.1));
                let dispatch = self.matmul(layer, product, true, resources, dims)?;
                backward.add.push(dispatch.clone());
                backward.write.push(dispatch);
            }
        }
        Ok(backward)
    }

    /// The loss and `∂L/∂z` of the output layer, then the mean loss: into the training
    /// metrics, and (for evaluation) into the evaluation metrics.
    fn loss(&mut self, setup: &PackSetup, max_batch: usize) -> [Vec<Dispatch>; 2] {
        let buffers = self.buffers;
        let output = buffers.output();
        // A model has at least one layer.
        let activation = self.layers[self.layers.len() - 1].layer.activation;
        let dims = self.shape(Shape::Loss(LossShape {
            loss: setup.loss,
            cols: setup.model.outputs(),
            max_batch,
        }));
        [&buffers.metrics_train, &buffers.metrics_eval].map(|metrics| {
            let resources = [
                output.post.as_entire_binding(),
                output.pre.as_entire_binding(),
                buffers.dense_targets.as_entire_binding(),
                buffers.class_targets.as_entire_binding(),
                output.delta.as_entire_binding(),
                buffers.row_loss.as_entire_binding(),
                dims.clone(),
                buffers.row_correct.as_entire_binding(),
                metrics.as_entire_binding(),
            ];
            self.kernels
                .loss
                .dispatches(setup.loss, activation, resources)
                .to_vec()
        })
    }

    /// Clipping by global norm over (the first binding's worth of) the `models` models' flat
    /// gradients; run only when clipping is on (gradients larger than a binding are clipped in
    /// chunks instead: `update.rs`).
    fn clip(&self, layout: &FlatLayout, models: u64) -> Dispatch {
        let binding = self.ctx.limits().max_storage_buffer_binding_size / 4;
        let len = (models * layout.total).min(binding);
        self.kernels.clip.dispatch([
            range(&self.buffers.grads, 0, len),
            self.buffers.clip_scale.as_entire_binding(),
            self.buffers.clip_params.as_entire_binding(),
        ])
    }
}
