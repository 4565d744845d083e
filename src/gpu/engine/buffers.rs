//! Every buffer a pack's step reads or writes, created once: each model's parameters,
//! gradients and optimizer state (one flat buffer each, model after model), the batch, each
//! layer's activations, the loss's rows and metrics, and the small buffers of clipping, the
//! optimizer and the gather.

use crate::engine::PackSetup;
use crate::error::Result;
use crate::gpu::buffers::FlatLayout;
use crate::gpu::context::GpuContext;
use crate::gpu::ops::loss::METRICS_WORDS;
use crate::optim::MAX_STATE_SLOTS;

/// What to do about a parameter-sized buffer over the device's limits.
pub(super) const LAYERS_HINT: &str = "use narrower layers";
/// What to do about a batch-sized buffer over the device's limits.
pub(super) const BATCH_HINT: &str = "use a smaller batch size";
/// What to do about a batch-sized buffer of several models over the device's limits.
pub(super) const PACK_BATCH_HINT: &str = "use a smaller batch size or fewer models";
/// What to do about all models' parameters over the device's limits.
pub(super) const PACK_HINT: &str = "pack fewer models into one run, or use narrower layers";
/// What to do about one model over the device's memory.
pub(super) const MEMORY_HINT: &str = "use a smaller batch size or narrower layers";
/// What to do about a pack over the device's memory.
pub(super) const PACK_MEMORY_HINT: &str =
    "pack fewer models into one run, or use a smaller batch size or narrower layers";
/// What to do about a dataset that does not fit on the device.
pub(super) const RESIDENT_HINT: &str =
    "stream the data from the host instead (--residency streamed)";

/// One layer's `[batch, outputs]` buffers, every model's one after another.
pub(crate) struct LayerBuffers {
    /// `z = a_{i-1} · Wᵀ + b`.
    pub pre: wgpu::Buffer,
    /// `a = act(z)`.
    pub post: wgpu::Buffer,
    /// `δ = ∂L/∂z`.
    pub delta: wgpu::Buffer,
}

/// The buffers of a pack.
pub(super) struct Buffers {
    /// Every model's parameters, `layout.total` elements apart.
    pub params: wgpu::Buffer,
    /// Every model's running statistics (batch norm's buffers), `stats_layout.total` apart.
    pub stats: wgpu::Buffer,
    /// Their gradients, alike.
    pub grads: wgpu::Buffer,
    /// Optimizer state buffers in use, by slot index, alike.
    pub state: Vec<(usize, wgpu::Buffer)>,
    /// Placeholders bound to the state slots the optimizer does not use.
    pub unused_state: Vec<wgpu::Buffer>,
    /// The batch's features, shared by every model.
    pub input: wgpu::Buffer,
    /// The batch's dense targets or class indices.
    pub dense_targets: wgpu::Buffer,
    pub class_targets: wgpu::Buffer,
    /// Rows of a resident dataset to gather.
    pub indices: wgpu::Buffer,
    /// Each layer's activations.
    pub layers: Vec<LayerBuffers>,
    /// Each row's loss and correctness.
    pub row_loss: wgpu::Buffer,
    pub row_correct: wgpu::Buffer,
    /// Bound where a kernel declares a buffer the dispatch does not use.
    pub dummy_read: wgpu::Buffer,
    pub dummy_write: wgpu::Buffer,
    /// The training and the evaluation metrics, [`METRICS_WORDS`] per model.
    pub metrics_train: wgpu::Buffer,
    pub metrics_eval: wgpu::Buffer,
    /// Each model's optimizer coefficients for the next step.
    pub coefficients: wgpu::Buffer,
    /// Each model's gradient clipping scale, and the clipping parameters.
    pub clip_scale: wgpu::Buffer,
    pub clip_params: wgpu::Buffer,
    /// The gather's shape.
    pub gather_dims: wgpu::Buffer,
    /// The step's dropout mask key (`MaskKeyUniform`), written before each training submit.
    pub mask_key: wgpu::Buffer,
    /// 1 for each model frozen (no longer trained), else 0, one u32 per model.
    pub frozen: wgpu::Buffer,
}

impl Buffers {
    /// Creates the buffers of `setup`'s models, their parameters laid out as `layout` and
    /// their running statistics as `stats_layout`, for batches of `max_batch` rows, the
    /// optimizer state at each member's initial value. Fails naming the buffer when one exceeds
    /// the device's limits.
    pub fn new(
        ctx: &GpuContext,
        setup: &PackSetup,
        (layout, stats_layout): (&FlatLayout, &FlatLayout),
        max_batch: usize,
    ) -> Result<Self> {
        let model = &setup.model;
        let models = setup.members.len();
        let (count, batch, stride) = (models as u64, max_batch as u64, layout.total);
        let usage = wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
        let (layers_hint, batch_hint) = if models > 1 {
            (PACK_HINT, PACK_BATCH_HINT)
        } else {
            (LAYERS_HINT, BATCH_HINT)
        };
        let flat_bytes = count * stride * 4;
        let flat = |name: &str| -> Result<wgpu::Buffer> {
            ctx.check_fits(name, flat_bytes, false, layers_hint)?;
            Ok(ctx.buffer(&wgpu::BufferDescriptor {
                label: Some(name),
                size: flat_bytes,
                usage: wgpu::BufferUsages::STORAGE | usage,
                mapped_at_creation: false,
            }))
        };
        let params = flat("parameters (all layers, one flat buffer)")?;
        let grads = flat("gradients")?;
        let stats_bytes = count * stats_layout.total * 4;
        ctx.check_fits("running statistics", stats_bytes, false, layers_hint)?;
        let stats = ctx.buffer(&wgpu::BufferDescriptor {
            label: Some("running statistics"),
            size: stats_bytes.max(16),
            usage: wgpu::BufferUsages::STORAGE | usage,
            mapped_at_creation: false,
        });
        // The state slots any member uses, each starting at that member's initial value.
        let mut state: Vec<(usize, wgpu::Buffer)> = Vec::new();
        for (k, member) in setup.members.iter().enumerate() {
            for slot in member.optimizer.state_slots() {
                if !state.iter().any(|(index, _)| *index == slot.index) {
                    let buffer = flat(&format!("optimizer state `{}`", slot.name))?;
                    state.push((slot.index, buffer));
                }
                if slot.initial != 0.0
                    && let Some((_, buffer)) = state.iter().find(|(i, _)| *i == slot.index)
                {
                    let values = vec![slot.initial; stride as usize];
                    ctx.queue.write_buffer(
                        buffer,
                        k as u64 * stride * 4,
                        bytemuck::cast_slice(&values),
                    );
                }
            }
        }
        state.sort_by_key(|(index, _)| *index);

        let storage = |name: String, elements: u64| {
            ctx.storage_buffer(&name, elements * 4, usage, batch_hint)
        };
        let per_models = |shape: String| {
            if models > 1 {
                format!("{shape} × {models} models")
            } else {
                shape
            }
        };
        let input = storage(
            format!("input batch [{max_batch}, {}]", model.inputs()),
            batch * model.inputs() as u64,
        )?;
        let row_loss = storage(
            per_models(format!("per-row losses [{max_batch}]")),
            count * batch,
        )?;
        let row_correct = storage(
            per_models(format!("per-row accuracy [{max_batch}]")),
            count * batch,
        )?;
        let dummy_read = storage("unused".into(), 4)?;
        let dummy_write = storage("unused".into(), 4)?;
        let mut layers = Vec::new();
        for (i, layer) in model.layers().iter().enumerate() {
            let n = count * batch * layer.outputs() as u64;
            let shape = per_models(format!("[{max_batch}, {}]", layer.outputs()));
            layers.push(LayerBuffers {
                pre: storage(format!("pre-activations of layer {i} {shape}"), n)?,
                post: storage(format!("activations of layer {i} {shape}"), n)?,
                delta: storage(format!("gradients of layer {i}'s outputs {shape}"), n)?,
            });
        }
        let outputs = model.outputs() as u64;
        let dense_targets = storage(format!("targets [{max_batch}, {outputs}]"), batch * outputs)?;
        let class_targets = storage(format!("class targets [{max_batch}]"), batch)?;
        let metrics_train = storage("training metrics".into(), METRICS_WORDS * count)?;
        let metrics_eval = storage("evaluation metrics".into(), METRICS_WORDS * count)?;
        let indices = storage(format!("batch row indices [{max_batch}]"), batch)?;
        let clip_scale = storage("gradient clipping scale".into(), count)?;
        ctx.queue
            .write_buffer(&clip_scale, 0, bytemuck::cast_slice(&vec![1.0f32; models]));
        let uniform = |label: &str| {
            ctx.buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: 16,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let clip_params = uniform("gradient clipping parameters");
        let gather_dims = uniform("gather shape");
        let mask_key = uniform("dropout mask key");
        let frozen = storage("frozen models".into(), count)?;
        // Each model's coefficients, as many bytes as the optimizer's (every member's is alike).
        let per_model = setup.members[0].optimizer.coefficients(1).as_bytes().len() as u64;
        let coefficients = storage("optimizer coefficients".into(), count * per_model / 4)?;
        let mut unused_state = Vec::new();
        for slot in 0..MAX_STATE_SLOTS {
            if !state.iter().any(|(index, _)| *index == slot) {
                unused_state.push(storage("unused optimizer state".into(), 4)?);
            }
        }
        Ok(Self {
            params,
            stats,
            grads,
            state,
            unused_state,
            input,
            dense_targets,
            class_targets,
            indices,
            layers,
            row_loss,
            row_correct,
            dummy_read,
            dummy_write,
            metrics_train,
            metrics_eval,
            coefficients,
            clip_scale,
            clip_params,
            gather_dims,
            mask_key,
            frozen,
        })
    }

    /// The input of layer `i`: the batch, or the layer before's activations.
    pub fn layer_input(&self, i: usize) -> &wgpu::Buffer {
        match i.checked_sub(1) {
            None => &self.input,
            Some(previous) => &self.layers[previous].post,
        }
    }

    /// The last layer's buffers: the models' outputs, `max_batch × outputs` apart.
    pub fn output(&self) -> &LayerBuffers {
        self.layers.last().expect("a model has at least one layer")
    }

    /// The buffer of optimizer state slot `slot`, if any member uses it.
    pub fn state_slot(&self, slot: usize) -> Option<&wgpu::Buffer> {
        self.state
            .iter()
            .find(|(index, _)| *index == slot)
            .map(|(_, buffer)| buffer)
    }
}
