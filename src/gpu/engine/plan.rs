//! A step recorded piece by piece, once: each layer's forward dispatches
//! ([`GpuLayer::record_forward`]), the loss, each layer's backward dispatches, last layer first
//! ([`GpuLayer::record_backward`]), and clipping; the optimizer update is recorded apart
//! (`update.rs`), as freezing a model records it again. Every dispatch has its own slot in one
//! block of shape uniforms, rewritten when the batch's rows change ([`Uniforms::prepare`]).

use super::buffers::Buffers;
use super::layers::GpuLayer;
use super::recorder::{MAX_SHAPE_BYTES, Recorder, Shape};
use crate::engine::PackSetup;
use crate::error::Result;
use crate::gpu::buffers::{FlatLayout, UniformBlock};
use crate::gpu::context::GpuContext;
use crate::gpu::ops::binding::range;
use crate::gpu::ops::dispatch::Dispatch;
use crate::gpu::ops::loss::LossShape;
use crate::model::Activation;

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
                Shape::Norm(s) => block.set(slot, bytemuck::bytes_of(&s.uniform(rows))),
                Shape::Dropout(s) => block.set(slot, bytemuck::bytes_of(&s.uniform(rows))),
                Shape::BatchNorm(s) => block.set(slot, bytemuck::bytes_of(&s.uniform(rows))),
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
    /// Every layer's forward dispatches in a training step, first layer first.
    pub forward: Vec<Dispatch>,
    /// The same in an evaluation (dropout passes its input through).
    pub forward_eval: Vec<Dispatch>,
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
    /// For each layer, where its dispatches end in `backward` and in `backward_accumulate`
    /// (which record the last layer first): its gradients are final once they have run.
    pub backward_ends: Vec<[usize; 2]>,
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
        layers: &[GpuLayer],
        max_batch: usize,
    ) -> Result<(Self, Uniforms)> {
        // One uniform per dispatch: the layers' and the loss's.
        let slots = layers.iter().map(GpuLayer::uniform_slots).sum::<usize>() + 1;
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
            block: &block,
            shapes: Vec::new(),
        };
        let (mut forward, mut forward_eval) = (Vec::new(), Vec::new());
        for (i, layer) in layers.iter().enumerate() {
            let (train, eval) = layer.record_forward(&mut recorder, i)?;
            forward.extend(train);
            forward_eval.extend(eval);
        }
        // A model has at least one layer.
        let activation = setup.model.layers()[layers.len() - 1].activation();
        let [loss_train, loss_eval] = loss(&mut recorder, setup, activation, max_batch);
        let (mut backward, mut backward_accumulate) = (Vec::new(), Vec::new());
        let mut backward_ends = vec![[0, 0]; layers.len()];
        for (i, layer) in layers.iter().enumerate().rev() {
            let layer = layer.record_backward(&mut recorder, i)?;
            backward.extend(layer.write);
            backward_accumulate.extend(layer.add);
            backward_ends[i] = [backward.len(), backward_accumulate.len()];
        }
        let clip = clip(&recorder, layout, setup.members.len() as u64);
        let shapes = recorder.shapes;
        debug_assert!(shapes.len() <= slots);
        let plan = Self {
            forward,
            forward_eval,
            loss_train,
            loss_eval,
            backward,
            backward_accumulate,
            backward_ends,
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

/// The loss and `∂L/∂z` of the output layer, then the mean loss: into the training
/// metrics, and (for evaluation) into the evaluation metrics.
fn loss(
    rec: &mut Recorder<'_>,
    setup: &PackSetup,
    activation: Activation,
    max_batch: usize,
) -> [Vec<Dispatch>; 2] {
    let buffers = rec.buffers;
    let output = buffers.output();
    let dims = rec.shape(Shape::Loss(LossShape {
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
        rec.kernels
            .loss
            .dispatches(setup.loss, activation, resources)
            .to_vec()
    })
}

/// Clipping by global norm over (the first binding's worth of) the `models` models' flat
/// gradients; run only when clipping is on (gradients larger than a binding are clipped in
/// chunks instead: `update.rs`).
fn clip(rec: &Recorder<'_>, layout: &FlatLayout, models: u64) -> Dispatch {
    let binding = rec.ctx.limits().max_storage_buffer_binding_size / 4;
    let len = (models * layout.total).min(binding);
    rec.kernels.clip.dispatch([
        range(&rec.buffers.grads, 0, len),
        rec.buffers.clip_scale.as_entire_binding(),
        rec.buffers.clip_params.as_entire_binding(),
    ])
}
