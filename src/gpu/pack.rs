//! The GPU engine's core: K models of one architecture trained side by side (K = 1 for
//! [`super::GpuEngine`]). Parameters, gradients and optimizer state stay in GPU buffers for the
//! whole run, model after model in one flat buffer each. Every buffer, bind group and pipeline
//! is created once; a step uploads the batch, records forward, loss, backward and the fused
//! optimizer update into one command buffer and submits it once, without waiting for it. Each
//! kernel covers all K models in one dispatch (the model index is the grid's z dimension, with
//! per-operand strides between models; the input batch and targets are shared). Nothing is read
//! back unless the caller asks.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use super::buffers::{FlatLayout, UniformBlock, bind_in_order, range};
use super::context::GpuContext;
use super::kernels::{Epilogue, MatmulTile, MatmulVariant, OPTIM_GROUP, ROW_GROUP, Vec4Access};
use super::memory::MemoryEstimate;
use super::tuning::Product;
use crate::data::Dataset;
use crate::engine::{Metrics, OptimizerState, Setup, check_clip_norm, check_optimizer_state};
use crate::error::{Error, Result};
use crate::loss::{Batch, Targets, TargetsView};
use crate::model::{Activation, Parameters};
use crate::optim::MAX_STATE_SLOTS;
use crate::pack::{Pack, PackSetup, check_learning_rates, check_model};

/// Uniform of `shaders/matmul.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct MatmulDims {
    m: u32,
    n: u32,
    k: u32,
    /// Elements between rows of A.
    lda: u32,
    /// Elements between consecutive models' A, B, C (and PRE), and AUX.
    strides: [u32; 4],
    /// Elements between rows of C (and of an `[M, N]` AUX).
    ldc: u32,
    /// Where A starts in its binding.
    offset_a: u32,
    /// C's (and AUX's) first column.
    offset_c: u32,
    _pad: u32,
}

/// Uniform of `shaders/loss.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct LossDims {
    rows: u32,
    cols: u32,
    class_targets: u32,
    _pad: u32,
    norm: f32,
    stride_out: u32,
    stride_rows: u32,
    _pad1: u32,
}

/// Uniform of `shaders/reduce.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ReduceDims {
    rows: u32,
    cols: u32,
    stride_in: u32,
    stride_out: u32,
}

/// What to do about a parameter-sized buffer over the device's limits.
const LAYERS_HINT: &str = "use narrower layers";
/// What to do about a batch-sized buffer over the device's limits.
const BATCH_HINT: &str = "use a smaller batch size";
/// What to do about a batch-sized buffer of several models over the device's limits.
const PACK_BATCH_HINT: &str = "use a smaller batch size or fewer models";
/// What to do about all models' parameters over the device's limits.
const PACK_HINT: &str = "pack fewer models into one run, or use narrower layers";
/// What to do about one model over the device's memory.
const MEMORY_HINT: &str = "use a smaller batch size or narrower layers";
/// What to do about a pack over the device's memory.
const PACK_MEMORY_HINT: &str =
    "pack fewer models into one run, or use a smaller batch size or narrower layers";
/// What to do about a dataset that does not fit on the device.
const RESIDENT_HINT: &str = "stream the data from the host instead (--residency streamed)";

/// Words of metrics per model (see `shaders/loss.wgsl`): loss sum, rows, correct rows, the
/// non-finite flag, the last batch's mean loss, and padding.
const METRICS_WORDS: u64 = 8;
/// Where the last batch's mean loss sits among them.
const LAST_LOSS: usize = 4;

/// Largest uniform block any kernel reads, in bytes.
const MAX_UNIFORM_BYTES: u64 = 48;

/// A size that is either the current batch's row count or fixed by the model.
#[derive(Debug, Clone, Copy)]
enum Extent {
    Batch,
    Fixed(u32),
}

impl Extent {
    fn at(self, rows: u32) -> u32 {
        match self {
            Extent::Batch => rows,
            Extent::Fixed(n) => n,
        }
    }
}

/// What a dispatch's shape uniform holds, as a function of the batch.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Matmul {
        m: Extent,
        n: Extent,
        k: Extent,
        strides: [u32; 4],
        /// Rows of A as stored, and where it starts; rows of C, and its first column.
        lda: u32,
        offset_a: u32,
        ldc: u32,
        offset_c: u32,
    },
    Loss,
    Columns {
        cols: u32,
        stride_in: u32,
        stride_out: u32,
    },
}

/// How many workgroups a dispatch launches, as a function of the batch.
#[derive(Debug, Clone, Copy)]
enum Grid {
    /// One workgroup per tile of an `m × n` product.
    Tiles {
        m: Extent,
        n: Extent,
        tile: MatmulTile,
    },
    /// One invocation per item, `ROW_GROUP` to a workgroup.
    Items(Extent),
    /// One workgroup.
    Single,
    /// One workgroup, once (not per model).
    Once,
    /// One invocation per column of each batch row: `(width / 64, rows)` workgroups.
    Gather { width: u32 },
    /// One invocation per item of each of `models` (in z): `per_model` items, `OPTIM_GROUP` to a
    /// workgroup, spread over x and y to stay under the per-dimension limit.
    PerModel { per_model: u64, models: u32 },
}

impl Grid {
    /// Workgroups in x, y and z; `Tiles`, `Items` and `Single` repeat for each of `models` in z.
    fn workgroups(self, rows: u32, max_per_dim: u32, models: u32) -> (u32, u32, u32) {
        match self {
            Grid::Tiles { m, n, tile } => (
                n.at(rows).div_ceil(tile.cols()),
                m.at(rows).div_ceil(tile.rows()),
                models,
            ),
            Grid::Items(count) => (count.at(rows).div_ceil(ROW_GROUP), 1, models),
            Grid::Single => (1, 1, models),
            Grid::Once => (1, 1, 1),
            Grid::Gather { width } => (width.div_ceil(ROW_GROUP), rows, 1),
            Grid::PerModel { per_model, models } => {
                let groups = per_model.div_ceil(u64::from(OPTIM_GROUP));
                let x = groups.min(u64::from(max_per_dim));
                (x as u32, groups.div_ceil(x.max(1)) as u32, models)
            }
        }
    }
}

/// What a kernel launch computes, for profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelKind {
    /// A matrix product (forward with bias and activation, weight gradient, input gradient).
    Matmul,
    /// The loss: per-row loss and output gradient, then the mean.
    Loss,
    /// A bias gradient (column sums).
    BiasGradient,
    /// Clipping by global norm.
    Clip,
    /// The fused optimizer update.
    Update,
    /// Gathering a batch from resident data.
    Gather,
}

impl KernelKind {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            KernelKind::Matmul => "matmul",
            KernelKind::Loss => "loss",
            KernelKind::BiasGradient => "bias gradient",
            KernelKind::Clip => "clip",
            KernelKind::Update => "optimizer update",
            KernelKind::Gather => "gather",
        }
    }
}

/// One recorded kernel launch.
struct Dispatch {
    kind: KernelKind,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    grid: Grid,
}

/// Trains K models of one architecture side by side on a GPU through wgpu (see the module
/// documentation); [`super::GpuEngine`] is a pack of one.
pub struct GpuPack {
    ctx: GpuContext,
    setup: PackSetup,
    models: usize,
    max_batch: usize,
    /// Each model's parameters, `layout.total` elements apart.
    layout: FlatLayout,
    params: wgpu::Buffer,
    grads: wgpu::Buffer,
    input: wgpu::Buffer,
    dense_targets: wgpu::Buffer,
    class_targets: wgpu::Buffer,
    /// The last layer's activations: the models' outputs, `max_batch × outputs` apart.
    output: wgpu::Buffer,
    shapes: Vec<Shape>,
    dims: UniformBlock,
    /// Each model's optimizer coefficients for the next step, one block per model.
    coefficients: wgpu::Buffer,
    /// Their bytes on the host, rewritten each step (kept to allocate once).
    coefficient_bytes: Vec<u8>,
    forward: Vec<Dispatch>,
    /// Loss rows and mean, accumulating the training metrics.
    loss_train: Vec<Dispatch>,
    /// Loss rows and mean, accumulating the evaluation metrics.
    loss_eval: Vec<Dispatch>,
    /// Weight, bias and input gradients, last layer first.
    backward: Vec<Dispatch>,
    clip: Dispatch,
    /// Clipping in chunks, when the gradients do not fit one binding (built when clipping is
    /// turned on): each chunk's sum of squares, then each model's scale.
    clip_chunked: Vec<Dispatch>,
    /// The fused optimizer update over the models not frozen, one dispatch per bindable chunk.
    update: Vec<Dispatch>,
    optimizer: wgpu::ComputePipeline,
    /// Placeholders bound to the state slots the optimizer does not use.
    unused_state: Vec<wgpu::Buffer>,
    gather: wgpu::ComputePipeline,
    lrs: Vec<f64>,
    frozen: Vec<bool>,
    clip_norm: Option<f32>,
    clip_scale: wgpu::Buffer,
    clip_params: wgpu::Buffer,
    metrics_train: wgpu::Buffer,
    metrics_eval: wgpu::Buffer,
    /// Optimizer state buffers in use, by slot index.
    state: Vec<(usize, wgpu::Buffer)>,
    indices: wgpu::Buffer,
    gather_dims: wgpu::Buffer,
    resident: Option<Resident>,
    /// Timestamp queries around each submitted pass, when turned on.
    timing: Option<Timing>,
    /// Timestamp queries around every launch of the next step, for [`GpuPack::profile_next_step`].
    profile: Option<Profile>,
    /// Rows and target kind the shape uniforms currently describe.
    current: Option<(u32, bool)>,
    steps: u64,
}

impl std::fmt::Debug for GpuPack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuPack")
            .field("adapter", &self.ctx.describe())
            .field("model", &self.setup.model)
            .field("models", &self.models)
            .field("max_batch", &self.max_batch)
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

/// Blocks of rows `[r0, r1)` of a layer's weights, each of which (across every model, the
/// models `before_last` elements apart) fits one storage binding and starts at an aligned
/// offset: one block when the whole tensor fits. `None` when not even one row does.
fn row_blocks(
    layer: &crate::model::Layer,
    weight: &super::buffers::TensorSlice,
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

/// Two timestamps around a pass and where they are resolved.
struct Timing {
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
}

/// Timestamps around every launch of one step, and the kinds of the launches recorded.
struct Profile {
    timing: Timing,
    launches: std::cell::RefCell<Vec<KernelKind>>,
}

/// The most launches one profiled step can time: every kernel of a step, with room to spare.
const PROFILE_CAPACITY: u32 = 4096;

/// A dataset kept on the GPU, and the dispatch that gathers a batch of it.
struct Resident {
    rows: usize,
    class_targets: bool,
    gather: Dispatch,
}

/// Buffers the dispatches bind, gathered while building.
struct Resources {
    pre: Vec<wgpu::Buffer>,
    post: Vec<wgpu::Buffer>,
    delta: Vec<wgpu::Buffer>,
    row_loss: wgpu::Buffer,
    row_correct: wgpu::Buffer,
    dummy_read: wgpu::Buffer,
    dummy_write: wgpu::Buffer,
}

impl GpuPack {
    /// A pack on `ctx` training `setup`'s members side by side, for batches of at most
    /// `max_batch` rows. Fails with a message naming the tensor when a buffer would exceed the
    /// device's limits.
    pub fn new(ctx: &GpuContext, setup: PackSetup, max_batch: usize) -> Result<Self> {
        setup.validate()?;
        if max_batch == 0 {
            return Err(Error::Usage("max_batch must be at least 1".into()));
        }
        let max_dim = ctx.limits().max_compute_workgroups_per_dimension;
        let widest = setup
            .model
            .layers()
            .iter()
            .map(|l| l.inputs.max(l.outputs))
            .max()
            .unwrap_or(1);
        for extent in [max_batch, widest] {
            if extent.div_ceil(MatmulTile::MIN_SIDE as usize) > max_dim as usize
                || extent > u32::MAX as usize
            {
                return Err(Error::Usage(format!(
                    "a batch or layer width of {extent} needs more than this device's {max_dim} \
                     workgroups per dimension; use a smaller batch size"
                )));
            }
        }
        if setup.members.len() > max_dim as usize {
            return Err(Error::Usage(format!(
                "{} models need more than this device's {max_dim} workgroups per dimension; pack \
                 fewer models into one run",
                setup.members.len()
            )));
        }
        let align = u64::from(ctx.limits().min_storage_buffer_offset_alignment);
        let hint = if setup.members.len() > 1 {
            PACK_MEMORY_HINT
        } else {
            MEMORY_HINT
        };
        MemoryEstimate::for_pack(&setup, max_batch, align).check(ctx.device_memory(), hint)?;
        ctx.scoped("creating the GPU engine's buffers and kernels", || {
            Self::build(ctx, setup, max_batch)
        })
    }

    fn build(ctx: &GpuContext, setup: PackSetup, max_batch: usize) -> Result<Self> {
        let limits = ctx.limits();
        let device = &ctx.device;
        let model = &setup.model;
        let layers = model.layers();
        let last = layers.len() - 1;
        let models = setup.members.len();
        let count = models as u64;
        let batch = max_batch as u64;
        let usage = wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
        let (layers_hint, batch_hint) = if models > 1 {
            (PACK_HINT, PACK_BATCH_HINT)
        } else {
            (LAYERS_HINT, BATCH_HINT)
        };

        let layout = FlatLayout::new(model, u64::from(limits.min_storage_buffer_offset_alignment));
        let stride = layout.total;
        // A tensor binding spans that tensor in every model.
        let span = |len: u64| (count - 1) * stride + len;
        // Biases are bound whole; weights in blocks of rows that each fit a binding.
        for t in layout.tensors.iter().skip(1).step_by(2) {
            ctx.check_fits(&t.name, span(t.len) * 4, true, layers_hint)?;
        }
        let blocks: Vec<Vec<(usize, usize)>> = layers
            .iter()
            .zip(layout.tensors.iter().step_by(2))
            .map(|(layer, weight)| {
                ctx.check_fits(&weight.name, span(weight.len) * 4, false, layers_hint)?;
                row_blocks(layer, weight, (count - 1) * stride, layout.align, limits).ok_or_else(
                    || Error::BufferTooLarge {
                        tensor: if count > 1 {
                            format!("one row of {} in every model", weight.name)
                        } else {
                            format!("one row of {}", weight.name)
                        },
                        bytes: span(layer.inputs as u64) * 4,
                        limit_name: "max_storage_buffer_binding_size",
                        limit: limits.max_storage_buffer_binding_size,
                        hint: layers_hint,
                    },
                )
            })
            .collect::<Result<_>>()?;
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
        let params_buffer = flat("parameters (all layers, one flat buffer)")?;
        let grads = flat("gradients")?;
        // The state slots any member uses, each starting at that member's initial value.
        let mut state: Vec<(usize, wgpu::Buffer)> = Vec::new();
        for (k, member) in setup.members.iter().enumerate() {
            for slot in member.optimizer.state_slots() {
                if !state.iter().any(|(index, _)| *index == slot.index) {
                    let buffer = flat(&format!("optimizer state `{}`", slot.name))?;
                    state.push((slot.index, buffer));
                }
                if slot.initial != 0.0 {
                    let (_, buffer) = state
                        .iter()
                        .find(|(index, _)| *index == slot.index)
                        .expect("allocated above");
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
        let input = storage(
            format!("input batch [{max_batch}, {}]", model.inputs()),
            batch * model.inputs() as u64,
        )?;
        let per_models = |shape: String| {
            if models > 1 {
                format!("{shape} × {models} models")
            } else {
                shape
            }
        };
        let mut res = Resources {
            pre: Vec::new(),
            post: Vec::new(),
            delta: Vec::new(),
            row_loss: storage(
                per_models(format!("per-row losses [{max_batch}]")),
                count * batch,
            )?,
            row_correct: storage(
                per_models(format!("per-row accuracy [{max_batch}]")),
                count * batch,
            )?,
            dummy_read: storage("unused".into(), 4)?,
            dummy_write: storage("unused".into(), 4)?,
        };
        for (i, layer) in layers.iter().enumerate() {
            let n = count * batch * layer.outputs as u64;
            let shape = per_models(format!("[{max_batch}, {}]", layer.outputs));
            res.pre
                .push(storage(format!("pre-activations of layer {i} {shape}"), n)?);
            res.post
                .push(storage(format!("activations of layer {i} {shape}"), n)?);
            res.delta.push(storage(
                format!("gradients of layer {i}'s outputs {shape}"),
                n,
            )?);
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
        let coefficients = storage(
            "optimizer coefficients".into(),
            count * MAX_UNIFORM_BYTES / 4,
        )?;

        let kernels = ctx.kernels();
        let mut shapes = Vec::new();
        // Every dispatch has its own shape uniform; count them first to size the block.
        let products: usize = blocks.iter().map(Vec::len).sum();
        let uniform_slots = 3 * products + layers.len() + 1;
        let dims = UniformBlock::new(
            ctx,
            "dispatch shapes",
            uniform_slots,
            MAX_UNIFORM_BYTES,
            u64::from(limits.min_uniform_buffer_offset_alignment),
        );
        let mut add_shape = |shape: Shape| {
            shapes.push(shape);
            shapes.len() - 1
        };
        let bind = |layout: &wgpu::BindGroupLayout, resources: Vec<wgpu::BindingResource<'_>>| {
            bind_in_order(device, "step", layout, resources)
        };
        let weight = |i: usize| &layout.tensors[2 * i];
        let bias = |i: usize| &layout.tensors[2 * i + 1];
        let fixed = |n: usize| Extent::Fixed(n as u32);
        // Elements between consecutive models: a whole model's parameters, or a batch-sized
        // buffer of `width` columns; the input batch is shared.
        let params_stride = stride as u32;
        let rows_stride = |width: usize| (max_batch * width) as u32;
        let source_stride = |i: usize| {
            if i == 0 {
                0
            } else {
                rows_stride(layers[i - 1].outputs)
            }
        };

        // Each product as the tuner sees it, with its vec4 reads and stores: vec4s where every
        // size and offset they cross allows, and the tile chosen for the largest batch.
        let product = |variant: MatmulVariant, shape: &Shape, training: bool| {
            let &Shape::Matmul {
                m,
                n,
                k,
                strides,
                lda,
                offset_a,
                ldc,
                offset_c,
            } = shape
            else {
                unreachable!("a matmul's shape")
            };
            let size = |e: Extent| match e {
                Extent::Batch => None,
                Extent::Fixed(v) => Some(v as usize),
            };
            let vec4 = Vec4Access {
                operands: variant.vec4_fits(
                    size(m),
                    size(n),
                    size(k),
                    &[strides[0], strides[1], lda, offset_a],
                ),
                result: variant.vec4_result_fits(size(n), &[strides[2], ldc, offset_c]),
            };
            let largest = |e: Extent| size(e).unwrap_or(max_batch);
            let product = Product {
                variant,
                shape: (largest(m), largest(n), largest(k)),
                vec4: vec4.operands,
                models,
                training,
            };
            (product, vec4, (m, n))
        };
        // Each product's pipeline and tile, under the context's tuning (settled below, before
        // the first product is built).
        let matmul = |variant: MatmulVariant,
                      shape: &Shape,
                      training: bool|
         -> Result<(wgpu::ComputePipeline, Grid)> {
            let (product, vec4, (m, n)) = product(variant, shape, training);
            let tile = ctx.product_tile(&product)?;
            Ok((
                kernels.matmul(variant, tile, vec4),
                Grid::Tiles { m, n, tile },
            ))
        };
        // The products of a step, layer by layer: forward a_i = act_i(a_{i-1} · W_iᵀ + b_i)
        // per block of W_i's rows (the block's columns of a_i); backward, last layer first,
        // ∂L/∂W_i per block (M = r1 - r0, N = in, K = batch) and δ_{i-1} summed over the blocks
        // (M = batch, N = in, K = r1 - r0).
        let forward_variant = |i: usize| MatmulVariant {
            transpose_a: false,
            transpose_b: true,
            epilogue: Epilogue::BiasActivation,
            activation: layers[i].activation,
        };
        let forward_shape = |i: usize, (r0, r1): (usize, usize)| Shape::Matmul {
            m: Extent::Batch,
            n: fixed(r1 - r0),
            k: fixed(layers[i].inputs),
            strides: [
                source_stride(i),
                params_stride,
                rows_stride(layers[i].outputs),
                params_stride,
            ],
            lda: layers[i].inputs as u32,
            offset_a: 0,
            ldc: layers[i].outputs as u32,
            offset_c: r0 as u32,
        };
        let weight_grad = MatmulVariant {
            transpose_a: true,
            transpose_b: false,
            epilogue: Epilogue::Plain,
            activation: Activation::Identity,
        };
        let weight_grad_shape = |i: usize, (r0, r1): (usize, usize)| Shape::Matmul {
            m: fixed(r1 - r0),
            n: fixed(layers[i].inputs),
            k: Extent::Batch,
            strides: [
                rows_stride(layers[i].outputs),
                source_stride(i),
                params_stride,
                0,
            ],
            lda: layers[i].outputs as u32,
            offset_a: r0 as u32,
            ldc: layers[i].inputs as u32,
            offset_c: 0,
        };
        // The first block writes, the others add, the last applies act'.
        let input_grad_variant = |i: usize, b: usize| MatmulVariant {
            transpose_a: false,
            transpose_b: false,
            epilogue: match (b == 0, b + 1 == blocks[i].len()) {
                (true, true) => Epilogue::ActivationGrad,
                (true, false) => Epilogue::Plain,
                (false, false) => Epilogue::Accumulate,
                (false, true) => Epilogue::AccumulateActivationGrad,
            },
            activation: layers[i - 1].activation,
        };
        let input_grad_shape = |i: usize, (r0, r1): (usize, usize)| Shape::Matmul {
            m: Extent::Batch,
            n: fixed(layers[i].inputs),
            k: fixed(r1 - r0),
            strides: [
                rows_stride(layers[i].outputs),
                params_stride,
                rows_stride(layers[i].inputs),
                rows_stride(layers[i].inputs),
            ],
            lda: layers[i].outputs as u32,
            offset_a: r0 as u32,
            ldc: layers[i].inputs as u32,
            offset_c: 0,
        };
        // Every product is tuned before any is built, so that progress can count them.
        let mut products = Vec::new();
        for (i, layer_blocks) in blocks.iter().enumerate() {
            for &block in layer_blocks {
                products.push(product(forward_variant(i), &forward_shape(i, block), false).0);
            }
        }
        for i in (0..layers.len()).rev() {
            for &block in &blocks[i] {
                products.push(product(weight_grad, &weight_grad_shape(i, block), true).0);
            }
            for (b, &block) in blocks[i].iter().enumerate().filter(|_| i > 0) {
                let variant = input_grad_variant(i, b);
                products.push(product(variant, &input_grad_shape(i, block), true).0);
            }
        }
        ctx.tune(&products)?;
        // Rows r0..r1 of layer i's weights (or their gradients) in `buffer`.
        let weight_rows = |buffer, i: usize, (r0, r1): (usize, usize)| {
            let inputs = layers[i].inputs as u64;
            range(
                buffer,
                weight(i).offset + r0 as u64 * inputs,
                span((r1 - r0) as u64 * inputs),
            )
        };

        // Forward, one product per block of W_i's rows.
        let mut forward = Vec::new();
        for (i, layer_blocks) in blocks.iter().enumerate() {
            for &(r0, r1) in layer_blocks {
                let shape = forward_shape(i, (r0, r1));
                let (pipeline, grid) = matmul(forward_variant(i), &shape, false)?;
                let slot = add_shape(shape);
                let source = if i == 0 { &input } else { &res.post[i - 1] };
                forward.push(Dispatch {
                    kind: KernelKind::Matmul,
                    pipeline,
                    bind_group: bind(
                        &kernels.matmul_layout,
                        vec![
                            source.as_entire_binding(),
                            weight_rows(&params_buffer, i, (r0, r1)),
                            range(&params_buffer, bias(i).offset, span(bias(i).len)),
                            res.post[i].as_entire_binding(),
                            res.pre[i].as_entire_binding(),
                            dims.binding(slot, std::mem::size_of::<MatmulDims>() as u64),
                        ],
                    ),
                    grid,
                });
            }
        }
        // Loss and ∂L/∂z of the output layer, then the mean loss: into the training metrics, or
        // the evaluation metrics.
        let slot = add_shape(Shape::Loss);
        let (rows_pipeline, mean_pipeline) = kernels.loss(setup.loss, layers[last].activation);
        let loss_group = |metrics: &wgpu::Buffer| {
            bind(
                &kernels.loss_layout,
                vec![
                    res.post[last].as_entire_binding(),
                    res.pre[last].as_entire_binding(),
                    dense_targets.as_entire_binding(),
                    class_targets.as_entire_binding(),
                    res.delta[last].as_entire_binding(),
                    res.row_loss.as_entire_binding(),
                    dims.binding(slot, std::mem::size_of::<LossDims>() as u64),
                    res.row_correct.as_entire_binding(),
                    metrics.as_entire_binding(),
                ],
            )
        };
        let loss_dispatches = |metrics| {
            let group = loss_group(metrics);
            vec![
                Dispatch {
                    kind: KernelKind::Loss,
                    pipeline: rows_pipeline.clone(),
                    bind_group: group.clone(),
                    grid: Grid::Items(Extent::Batch),
                },
                Dispatch {
                    kind: KernelKind::Loss,
                    pipeline: mean_pipeline.clone(),
                    bind_group: group,
                    grid: Grid::Single,
                },
            ]
        };
        let loss_train = loss_dispatches(&metrics_train);
        let loss_eval = loss_dispatches(&metrics_eval);

        let mut backward = Vec::new();

        // Backward, last layer first, each product per block of W_i's rows.
        let column_sums = kernels.column_sums();
        for i in (0..layers.len()).rev() {
            let layer = layers[i];
            let source = if i == 0 { &input } else { &res.post[i - 1] };
            // ∂L/∂W_i[r0..r1] = δ_i[:, r0..r1]ᵀ · a_{i-1}: M = r1 - r0, N = in, K = batch.
            for &(r0, r1) in &blocks[i] {
                let shape = weight_grad_shape(i, (r0, r1));
                let (pipeline, grid) = matmul(weight_grad, &shape, true)?;
                let slot = add_shape(shape);
                backward.push(Dispatch {
                    kind: KernelKind::Matmul,
                    pipeline,
                    bind_group: bind(
                        &kernels.matmul_layout,
                        vec![
                            res.delta[i].as_entire_binding(),
                            source.as_entire_binding(),
                            res.dummy_read.as_entire_binding(),
                            weight_rows(&grads, i, (r0, r1)),
                            res.dummy_write.as_entire_binding(),
                            dims.binding(slot, std::mem::size_of::<MatmulDims>() as u64),
                        ],
                    ),
                    grid,
                });
            }
            // ∂L/∂b_i = Σ_rows δ_i.
            let slot = add_shape(Shape::Columns {
                cols: layer.outputs as u32,
                stride_in: rows_stride(layer.outputs),
                stride_out: params_stride,
            });
            backward.push(Dispatch {
                kind: KernelKind::BiasGradient,
                pipeline: column_sums.clone(),
                bind_group: bind(
                    &kernels.reduce_layout,
                    vec![
                        res.delta[i].as_entire_binding(),
                        range(&grads, bias(i).offset, span(bias(i).len)),
                        dims.binding(slot, std::mem::size_of::<ReduceDims>() as u64),
                    ],
                ),
                grid: Grid::Items(fixed(layer.outputs)),
            });
            if i == 0 {
                continue;
            }
            // δ_{i-1} = (Σ_blocks δ_i[:, r0..r1] · W_i[r0..r1]) ⊙ act'_{i-1}(z_{i-1}): M = batch,
            // N = in, K = r1 - r0; the first block writes, the others add, the last applies act'.
            for (b, &(r0, r1)) in blocks[i].iter().enumerate() {
                let shape = input_grad_shape(i, (r0, r1));
                let (pipeline, grid) = matmul(input_grad_variant(i, b), &shape, true)?;
                let slot = add_shape(shape);
                backward.push(Dispatch {
                    kind: KernelKind::Matmul,
                    pipeline,
                    bind_group: bind(
                        &kernels.matmul_layout,
                        vec![
                            res.delta[i].as_entire_binding(),
                            weight_rows(&params_buffer, i, (r0, r1)),
                            res.pre[i - 1].as_entire_binding(),
                            res.delta[i - 1].as_entire_binding(),
                            res.dummy_write.as_entire_binding(),
                            dims.binding(slot, std::mem::size_of::<MatmulDims>() as u64),
                        ],
                    ),
                    grid,
                });
            }
        }
        debug_assert!(shapes.len() <= uniform_slots);

        let optimizer = kernels.optimizer(&setup.members[0].optimizer);
        let mut unused_state = Vec::new();
        for slot in 0..MAX_STATE_SLOTS {
            if !state.iter().any(|(index, _)| *index == slot) {
                unused_state.push(storage("unused optimizer state".into(), 4)?);
            }
        }

        // Clipping by global norm over (the first binding's worth of) the flat gradients;
        // recorded only when clipping is on, and refused there for larger packs.
        let clip_len = (count * stride).min(limits.max_storage_buffer_binding_size / 4);
        let clip = Dispatch {
            kind: KernelKind::Clip,
            pipeline: kernels.clip(),
            bind_group: bind(
                &kernels.clip_layout,
                vec![
                    range(&grads, 0, clip_len),
                    clip_scale.as_entire_binding(),
                    clip_params.as_entire_binding(),
                ],
            ),
            grid: Grid::Single,
        };
        let gather = kernels.gather();

        let mut pack = Self {
            ctx: ctx.clone(),
            models,
            max_batch,
            params: params_buffer,
            grads,
            input,
            dense_targets,
            class_targets,
            output: res.post[last].clone(),
            shapes,
            dims,
            coefficients,
            coefficient_bytes: Vec::new(),
            forward,
            loss_train,
            loss_eval,
            backward,
            clip,
            update: Vec::new(),
            optimizer,
            unused_state,
            gather,
            lrs: setup.members.iter().map(|m| m.optimizer.lr()).collect(),
            frozen: vec![false; models],
            clip_norm: None,
            clip_chunked: Vec::new(),
            clip_scale,
            clip_params,
            metrics_train,
            metrics_eval,
            state,
            indices,
            gather_dims,
            resident: None,
            timing: None,
            profile: None,
            current: None,
            steps: 0,
            layout,
            setup,
        };
        pack.record_update();
        for k in 0..models {
            pack.write_parameters(k, &pack.setup.members[k].parameters);
        }
        Ok(pack)
    }

    /// The optimizer's chunks: `(first model, models, start element, elements per model)` for
    /// each run of consecutive models that are not frozen, in as many models per binding as fit
    /// (or, for a model larger than a binding, a binding's worth of it at a time).
    fn update_chunks(&self) -> Vec<(usize, usize, u64, u64)> {
        let stride = self.layout.total;
        let max_bytes = self.ctx.limits().max_storage_buffer_binding_size;
        let per_binding = (max_bytes / (stride * 4)) as usize;
        let mut chunks = Vec::new();
        let mut k = 0;
        while k < self.models {
            if self.frozen[k] {
                k += 1;
                continue;
            }
            let first = k;
            while k < self.models
                && !self.frozen[k]
                && (per_binding == 0 || k - first < per_binding)
            {
                k += 1;
            }
            if per_binding > 0 {
                chunks.push((first, k - first, first as u64 * stride, stride));
                continue;
            }
            for model in first..k {
                let whole = (model as u64 * stride, (model as u64 + 1) * stride);
                chunks.extend(
                    self.layout
                        .chunks(whole, max_bytes)
                        .into_iter()
                        .map(|(start, len)| (model, 1, start, len)),
                );
            }
        }
        chunks
    }

    /// Records the fused optimizer update over the models that are not frozen (see
    /// [`GpuPack::update_chunks`]). Called once, and again whenever a model is frozen.
    fn record_update(&mut self) {
        let mut update = Vec::new();
        for (model, models, start, per_model) in self.update_chunks() {
            let len = models as u64 * per_model;
            {
                let chunk = self.ctx.buffer(&wgpu::BufferDescriptor {
                    label: Some("optimizer chunk"),
                    size: 16,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                // The kernels count in vec4s; tensors and chunks start at multiples of 4.
                let words: [u32; 4] = [model as u32, (per_model / 4) as u32, 0, 0];
                self.ctx
                    .queue
                    .write_buffer(&chunk, 0, bytemuck::cast_slice(&words));
                let mut unused = self.unused_state.iter();
                let mut resources = vec![
                    range(&self.params, start, len),
                    range(&self.grads, start, len),
                ];
                resources.extend((0..MAX_STATE_SLOTS).map(|slot| {
                    match self.state.iter().find(|(index, _)| *index == slot) {
                        Some((_, buffer)) => range(buffer, start, len),
                        None => unused
                            .next()
                            .expect("one placeholder per unused slot")
                            .as_entire_binding(),
                    }
                }));
                resources.push(self.coefficients.as_entire_binding());
                resources.push(self.clip_scale.as_entire_binding());
                resources.push(self.metrics_train.as_entire_binding());
                resources.push(chunk.as_entire_binding());
                update.push(Dispatch {
                    kind: KernelKind::Update,
                    pipeline: self.optimizer.clone(),
                    bind_group: bind_in_order(
                        &self.ctx.device,
                        "optimizer update",
                        &self.ctx.kernels().optim_layout,
                        resources,
                    ),
                    grid: Grid::PerModel {
                        per_model: per_model / 4,
                        models: models as u32,
                    },
                });
            }
        }
        self.update = update;
    }

    /// The maximum number of rows per batch this pack was built for.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// The device this pack runs on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Element offset of model `k`'s tensors in the flat buffers.
    fn model_offset(&self, k: usize) -> u64 {
        k as u64 * self.layout.total
    }

    fn write_parameters(&self, k: usize, params: &Parameters) {
        let flat = self.layout.pack(params);
        self.ctx.queue.write_buffer(
            &self.params,
            self.model_offset(k) * 4,
            bytemuck::cast_slice(&flat),
        );
    }

    /// Reads model `k`'s share of a flat buffer back, as parameters.
    fn read_model(&self, buffer: &wgpu::Buffer, k: usize, what: &str) -> Result<Parameters> {
        check_model(k, self.models)?;
        let flat = self.ctx.read_back(
            buffer,
            self.model_offset(k) * 4,
            self.layout.total * 4,
            what,
        )?;
        Ok(self.layout.unpack(&flat, &self.setup.model))
    }

    /// Rewrites the shape uniforms when the batch's row count or target kind changed.
    fn prepare_shapes(&mut self, rows: u32, class_targets: bool) {
        if self.current == Some((rows, class_targets)) {
            return;
        }
        let outputs = self.setup.model.outputs();
        for (slot, shape) in self.shapes.iter().enumerate() {
            match *shape {
                Shape::Matmul {
                    m,
                    n,
                    k,
                    strides,
                    lda,
                    offset_a,
                    ldc,
                    offset_c,
                } => self.dims.set(
                    slot,
                    bytemuck::bytes_of(&MatmulDims {
                        m: m.at(rows),
                        n: n.at(rows),
                        k: k.at(rows),
                        lda,
                        strides,
                        ldc,
                        offset_a,
                        offset_c,
                        _pad: 0,
                    }),
                ),
                Shape::Loss => self.dims.set(
                    slot,
                    bytemuck::bytes_of(&LossDims {
                        rows,
                        cols: outputs as u32,
                        class_targets: u32::from(class_targets),
                        _pad: 0,
                        norm: self.setup.loss.normalizer(rows as usize, outputs),
                        stride_out: (self.max_batch * outputs) as u32,
                        stride_rows: self.max_batch as u32,
                        _pad1: 0,
                    }),
                ),
                Shape::Columns {
                    cols,
                    stride_in,
                    stride_out,
                } => self.dims.set(
                    slot,
                    bytemuck::bytes_of(&ReduceDims {
                        rows,
                        cols,
                        stride_in,
                        stride_out,
                    }),
                ),
            }
        }
        self.dims.upload(&self.ctx.queue);
        self.current = Some((rows, class_targets));
    }

    /// Queues the upload of a batch's features and targets.
    fn upload_batch(&self, batch: &Batch<'_>) {
        self.upload_features(batch.features);
        let queue = &self.ctx.queue;
        match batch.targets {
            TargetsView::Classes(classes) => {
                queue.write_buffer(&self.class_targets, 0, bytemuck::cast_slice(classes))
            }
            TargetsView::Dense(values) => {
                let values = values.as_standard_layout();
                let values = values.as_slice().expect("standard layout is contiguous");
                queue.write_buffer(&self.dense_targets, 0, bytemuck::cast_slice(values));
            }
        }
    }

    /// Records and submits one training step on the batch now in the input buffers (or, with
    /// `gathered`, on the rows the gather dispatch will copy there first).
    fn train_step(&mut self, rows: u32, class_targets: bool, gathered: bool) -> Result<()> {
        self.prepare_shapes(rows, class_targets);
        self.steps += 1;
        self.coefficient_bytes.clear();
        for (member, &lr) in self.setup.members.iter().zip(&self.lrs) {
            let c = member.optimizer.with_lr(lr).coefficients(self.steps);
            self.coefficient_bytes.extend_from_slice(c.as_bytes());
        }
        self.ctx
            .queue
            .write_buffer(&self.coefficients, 0, &self.coefficient_bytes);
        let gather = match (&self.resident, gathered) {
            (Some(resident), true) => std::slice::from_ref(&resident.gather),
            _ => &[],
        };
        let clip = match (self.clip_norm, self.clip_chunked.is_empty()) {
            (None, _) => &[],
            (Some(_), true) => std::slice::from_ref(&self.clip),
            (Some(_), false) => &self.clip_chunked[..],
        };
        self.submit(
            &[
                gather,
                &self.forward,
                &self.loss_train,
                &self.backward,
                clip,
                &self.update,
            ],
            rows,
        );
        self.ctx
            .check_errors(&format!("running training step {}", self.steps))
    }

    /// Reads a metrics buffer back and zeroes its totals (keeping each model's last loss).
    fn take(&self, buffer: &wgpu::Buffer, what: &str) -> Result<Vec<Metrics>> {
        let bytes = METRICS_WORDS * 4 * self.models as u64;
        let raw = self.ctx.read_back(buffer, 0, bytes, what)?;
        let kept: Vec<f32> = raw
            .chunks_exact(METRICS_WORDS as usize)
            .flat_map(|m| {
                let mut words = [0.0; METRICS_WORDS as usize];
                words[LAST_LOSS] = m[LAST_LOSS];
                words
            })
            .collect();
        self.ctx
            .queue
            .write_buffer(buffer, 0, bytemuck::cast_slice(&kept));
        Ok(raw
            .chunks_exact(METRICS_WORDS as usize)
            .map(|m| Metrics {
                loss_sum: m[0],
                rows: u64::from(m[1].to_bits()),
                correct: u64::from(m[2].to_bits()),
                nonfinite: m[3].to_bits() != 0,
            })
            .collect())
    }

    /// Queues the upload of `features` into the input buffer.
    fn upload_features(&self, features: ArrayView2<'_, f32>) {
        let features = features.as_standard_layout();
        let values = features.as_slice().expect("standard layout is contiguous");
        self.ctx
            .queue
            .write_buffer(&self.input, 0, bytemuck::cast_slice(values));
    }

    /// The launches of clipping by global norm over gradients that do not fit one binding:
    /// each model's gradients cut into chunks of at most `binding` elements (at aligned
    /// offsets), one launch per chunk for its sum of squares, then one for every model's scale.
    fn chunked_clip(&self, max_norm: f32, binding: u64) -> Result<Vec<Dispatch>> {
        let align = self.layout.align;
        let chunk = binding / align * align;
        let per_model = self.layout.total.div_ceil(chunk);
        let hint = "turn gradient clipping off or use narrower layers";
        let partials = self.ctx.storage_buffer(
            "gradient clipping partial sums",
            self.models as u64 * per_model * 4,
            wgpu::BufferUsages::empty(),
            hint,
        )?;
        let uniform = |words: [u32; 4]| {
            let buffer = self.ctx.buffer(&wgpu::BufferDescriptor {
                label: Some("gradient clipping chunk"),
                size: 16,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            self.ctx
                .queue
                .write_buffer(&buffer, 0, bytemuck::cast_slice(&words));
            buffer
        };
        let bind = |grad: wgpu::BindingResource<'_>, out: &wgpu::Buffer, params: &wgpu::Buffer| {
            bind_in_order(
                &self.ctx.device,
                "gradient clipping",
                &self.ctx.kernels().clip_layout,
                [grad, out.as_entire_binding(), params.as_entire_binding()],
            )
        };
        let (partial_sums, scale) = self.ctx.kernels().clip_chunked();
        let mut dispatches = Vec::new();
        for model in 0..self.models as u64 {
            for c in 0..per_model {
                let start = c * chunk;
                let len = chunk.min(self.layout.total - start);
                let index = model * per_model + c;
                let params = uniform([len as u32, max_norm.to_bits(), index as u32, 0]);
                dispatches.push(Dispatch {
                    kind: KernelKind::Clip,
                    pipeline: partial_sums.clone(),
                    bind_group: bind(
                        range(&self.grads, model * self.layout.total + start, len),
                        &partials,
                        &params,
                    ),
                    grid: Grid::Once,
                });
            }
        }
        let params = uniform([per_model as u32, max_norm.to_bits(), 0, 0]);
        dispatches.push(Dispatch {
            kind: KernelKind::Clip,
            pipeline: scale,
            bind_group: bind(partials.as_entire_binding(), &self.clip_scale, &params),
            grid: Grid::Single,
        });
        self.ctx.check_errors("preparing gradient clipping")?;
        Ok(dispatches)
    }

    /// Records `dispatches` into one compute pass and submits it (when profiling, each into a
    /// pass of its own between two timestamps).
    fn submit(&self, dispatches: &[&[Dispatch]], rows: u32) {
        let max_dim = self.ctx.limits().max_compute_workgroups_per_dimension;
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        if let Some(profile) = &self.profile {
            let all: Vec<&Dispatch> = dispatches
                .iter()
                .flat_map(|d| d.iter())
                .take(PROFILE_CAPACITY as usize / 2)
                .collect();
            let queries = &profile.timing.queries;
            for (i, dispatch) in all.iter().enumerate() {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some(dispatch.kind.name()),
                    timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                        query_set: queries,
                        beginning_of_pass_write_index: Some(2 * i as u32),
                        end_of_pass_write_index: Some(2 * i as u32 + 1),
                    }),
                });
                let (x, y, z) = dispatch.grid.workgroups(rows, max_dim, self.models as u32);
                pass.set_pipeline(&dispatch.pipeline);
                pass.set_bind_group(0, &dispatch.bind_group, &[]);
                pass.dispatch_workgroups(x, y, z);
            }
            let count = 2 * all.len() as u32;
            encoder.resolve_query_set(queries, 0..count, &profile.timing.resolved, 0);
            *profile.launches.borrow_mut() = all.iter().map(|d| d.kind).collect();
            self.ctx.queue.submit([encoder.finish()]);
            return;
        }
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: self
                    .timing
                    .as_ref()
                    .map(|t| wgpu::ComputePassTimestampWrites {
                        query_set: &t.queries,
                        beginning_of_pass_write_index: Some(0),
                        end_of_pass_write_index: Some(1),
                    }),
            });
            for dispatch in dispatches.iter().flat_map(|d| d.iter()) {
                let (x, y, z) = dispatch.grid.workgroups(rows, max_dim, self.models as u32);
                pass.set_pipeline(&dispatch.pipeline);
                pass.set_bind_group(0, &dispatch.bind_group, &[]);
                pass.dispatch_workgroups(x, y, z);
            }
        }
        if let Some(t) = &self.timing {
            encoder.resolve_query_set(&t.queries, 0..2, &t.resolved, 0);
        }
        self.ctx.queue.submit([encoder.finish()]);
    }

    /// Kernel launches in one training step (with clipping when it is on; without the gather of
    /// resident data).
    pub fn dispatches_per_step(&self) -> usize {
        self.forward.len()
            + self.loss_train.len()
            + self.backward.len()
            + match (self.clip_norm, self.clip_chunked.len()) {
                (None, _) => 0,
                (Some(_), 0) => 1,
                (Some(_), chunked) => chunked,
            }
            + self.update.len()
    }

    /// Turns on GPU timing of every submitted pass with timestamp queries; `false` when the
    /// device cannot (time on the host instead).
    pub fn enable_gpu_timing(&mut self) -> bool {
        if !self.ctx.supports_timestamps() {
            return false;
        }
        let queries = self.ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("step timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let resolved = self.ctx.buffer(&wgpu::BufferDescriptor {
            label: Some("resolved timestamps"),
            size: 16,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        self.timing = Some(Timing { queries, resolved });
        true
    }

    /// Records the next step (by [`Pack::step`] or [`Pack::step_resident`]) with every kernel
    /// launch in a pass of its own between two timestamps, for [`GpuPack::take_profile`];
    /// `false` when the device has no timestamp queries. The step itself is a real one; only
    /// its recording differs.
    pub fn profile_next_step(&mut self) -> bool {
        if !self.ctx.supports_timestamps() {
            return false;
        }
        let queries = self.ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("profile timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: PROFILE_CAPACITY,
        });
        let resolved = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("resolved profile timestamps"),
            size: 8 * u64::from(PROFILE_CAPACITY),
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        self.profile = Some(Profile {
            timing: Timing { queries, resolved },
            launches: Default::default(),
        });
        true
    }

    /// Each launch of the profiled step, in launch order, with its GPU time in seconds (reads
    /// back); `None` when no step was profiled. Profiling stops.
    pub fn take_profile(&mut self) -> Result<Option<Vec<(KernelKind, f64)>>> {
        let Some(profile) = self.profile.take() else {
            return Ok(None);
        };
        let launches = profile.launches.into_inner();
        if launches.is_empty() {
            return Ok(None);
        }
        let raw = self.ctx.read_back_bytes(
            &profile.timing.resolved,
            0,
            16 * launches.len() as u64,
            "the profile's timestamps",
        )?;
        let stamps: Vec<u64> = bytemuck::pod_collect_to_vec(&raw);
        let period = f64::from(self.ctx.queue.get_timestamp_period());
        Ok(Some(
            launches
                .into_iter()
                .zip(stamps.chunks_exact(2))
                .map(|(kind, pair)| (kind, pair[1].saturating_sub(pair[0]) as f64 * period * 1e-9))
                .collect(),
        ))
    }

    /// GPU time of the last submitted pass, in seconds, from its timestamps (reads back).
    pub fn last_gpu_seconds(&mut self) -> Result<Option<f64>> {
        let Some(t) = &self.timing else {
            return Ok(None);
        };
        let raw = self
            .ctx
            .read_back_bytes(&t.resolved, 0, 16, "the step's timestamps")?;
        let stamps: [u64; 2] = bytemuck::pod_read_unaligned(&raw[..16]);
        let period = f64::from(self.ctx.queue.get_timestamp_period());
        Ok(Some(
            stamps[1].saturating_sub(stamps[0]) as f64 * period * 1e-9,
        ))
    }

    fn check_rows(&self, rows: usize) -> Result<u32> {
        if rows == 0 {
            return Err(Error::EmptyBatch);
        }
        if rows > self.max_batch {
            return Err(Error::BatchTooLarge {
                rows,
                max: self.max_batch,
            });
        }
        Ok(rows as u32)
    }

    /// The learning rate of model `k`'s next step.
    pub fn learning_rate(&self, k: usize) -> f64 {
        self.lrs[k]
    }

    /// Model `k`'s outputs for `features` (`[rows, inputs]` → `[rows, outputs]`).
    pub fn predict(&mut self, k: usize, features: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        check_model(k, self.models)?;
        let model = &self.setup.model;
        model.check_features(&features)?;
        let outputs = model.outputs();
        let mut result = Vec::with_capacity(features.nrows() * outputs);
        let class_targets = self.current.is_some_and(|(_, classes)| classes);
        let offset = (k * self.max_batch * outputs * 4) as u64;
        for chunk in features.axis_chunks_iter(ndarray::Axis(0), self.max_batch) {
            let rows = self.check_rows(chunk.nrows())?;
            self.upload_features(chunk);
            self.prepare_shapes(rows, class_targets);
            self.submit(&[&self.forward], rows);
            let bytes = u64::from(rows) * outputs as u64 * 4;
            result.extend(
                self.ctx
                    .read_back(&self.output, offset, bytes, "predictions")?,
            );
        }
        Ok(Array2::from_shape_vec((features.nrows(), outputs), result)
            .expect("one output row per feature row"))
    }

    /// Model `k`'s optimizer state.
    pub fn optimizer_state(&mut self, k: usize) -> Result<OptimizerState> {
        check_model(k, self.models)?;
        let mut slots = Vec::new();
        for slot in self.setup.members[k].optimizer.state_slots() {
            let (_, buffer) = self
                .state
                .iter()
                .find(|(index, _)| *index == slot.index)
                .expect("every member's slots are allocated");
            slots.push((
                slot.name.to_string(),
                self.read_model(buffer, k, "the optimizer state")?,
            ));
        }
        Ok(OptimizerState {
            steps: self.steps,
            slots,
        })
    }

    /// Restores model `k`'s optimizer state (slots by name), and the pack's step count.
    pub fn set_optimizer_state(&mut self, k: usize, state: &OptimizerState) -> Result<()> {
        check_model(k, self.models)?;
        check_optimizer_state(&self.setup.setup(k), state)?;
        let slots = self.setup.members[k].optimizer.state_slots();
        for (slot, (_, values)) in slots.iter().zip(&state.slots) {
            let (_, buffer) = self
                .state
                .iter()
                .find(|(index, _)| *index == slot.index)
                .expect("every member's slots are allocated");
            let flat = self.layout.pack(values);
            self.ctx.queue.write_buffer(
                buffer,
                self.model_offset(k) * 4,
                bytemuck::cast_slice(&flat),
            );
        }
        self.steps = state.steps;
        self.ctx.check_errors("uploading the optimizer state")
    }
}

impl Pack for GpuPack {
    fn describe(&self) -> String {
        format!("gpu: {}", self.ctx.describe())
    }

    fn models(&self) -> usize {
        self.models
    }

    fn setup(&self, k: usize) -> Setup {
        self.setup.setup(k)
    }

    fn step(&mut self, batch: &Batch<'_>) -> Result<()> {
        batch.check(&self.setup.model, self.setup.loss)?;
        let rows = self.check_rows(batch.rows())?;
        self.upload_batch(batch);
        let class_targets = matches!(batch.targets, TargetsView::Classes(_));
        self.train_step(rows, class_targets, false)
    }

    fn last_losses(&mut self) -> Result<Vec<f32>> {
        if self.steps == 0 {
            return Err(Error::NoStepYet);
        }
        let bytes = METRICS_WORDS * 4 * self.models as u64;
        let raw = self
            .ctx
            .read_back(&self.metrics_train, 0, bytes, "the loss")?;
        Ok(raw
            .chunks_exact(METRICS_WORDS as usize)
            .map(|m| m[LAST_LOSS])
            .collect())
    }

    fn gradients(&mut self, k: usize) -> Result<Parameters> {
        self.read_model(&self.grads, k, "the gradients")
    }

    fn parameters(&mut self, k: usize) -> Result<Parameters> {
        self.read_model(&self.params, k, "the parameters")
    }

    fn set_parameters(&mut self, k: usize, parameters: &Parameters) -> Result<()> {
        check_model(k, self.models)?;
        parameters.check_shapes(&self.setup.model)?;
        self.write_parameters(k, parameters);
        self.ctx.check_errors("uploading parameters")
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn synchronize(&mut self) -> Result<()> {
        self.ctx.wait("waiting for submitted steps")
    }

    fn set_learning_rates(&mut self, lrs: &[f64]) -> Result<()> {
        check_learning_rates(&self.setup, lrs)?;
        self.lrs.copy_from_slice(lrs);
        Ok(())
    }

    fn set_clip_norm(&mut self, max_norm: Option<f32>) -> Result<()> {
        check_clip_norm(max_norm)?;
        match max_norm {
            Some(norm) => {
                let binding = self.ctx.limits().max_storage_buffer_binding_size / 4;
                if self.models as u64 * self.layout.total <= binding {
                    let params: [u32; 4] = [
                        self.layout.total as u32,
                        norm.to_bits(),
                        self.layout.total as u32,
                        0,
                    ];
                    self.ctx.queue.write_buffer(
                        &self.clip_params,
                        0,
                        bytemuck::cast_slice(&params),
                    );
                } else {
                    self.clip_chunked = self.chunked_clip(norm, binding)?;
                }
            }
            None => self.ctx.queue.write_buffer(
                &self.clip_scale,
                0,
                bytemuck::cast_slice(&vec![1.0f32; self.models]),
            ),
        }
        self.clip_norm = max_norm;
        Ok(())
    }

    fn freeze(&mut self, k: usize) -> Result<()> {
        check_model(k, self.models)?;
        if !self.frozen[k] {
            self.frozen[k] = true;
            self.record_update();
            self.ctx.check_errors("freezing a model")?;
        }
        Ok(())
    }

    fn take_metrics(&mut self) -> Result<Vec<Metrics>> {
        self.take(&self.metrics_train, "the training metrics")
    }

    fn evaluate(&mut self, batch: &Batch<'_>) -> Result<Vec<Metrics>> {
        batch.check(&self.setup.model, self.setup.loss)?;
        self.ctx.queue.write_buffer(
            &self.metrics_eval,
            0,
            &vec![0u8; (METRICS_WORDS * 4) as usize * self.models],
        );
        let class_targets = matches!(batch.targets, TargetsView::Classes(_));
        for start in (0..batch.rows()).step_by(self.max_batch) {
            let end = (start + self.max_batch).min(batch.rows());
            let chunk = Batch::new(
                batch.features.slice(ndarray::s![start..end, ..]),
                match batch.targets {
                    TargetsView::Classes(c) => TargetsView::Classes(&c[start..end]),
                    TargetsView::Dense(d) => {
                        TargetsView::Dense(d.slice_move(ndarray::s![start..end, ..]))
                    }
                },
            );
            let rows = (end - start) as u32;
            self.upload_batch(&chunk);
            self.prepare_shapes(rows, class_targets);
            self.submit(&[&self.forward, &self.loss_eval], rows);
        }
        self.take(&self.metrics_eval, "the evaluation metrics")
    }

    fn load_resident(&mut self, data: Arc<Dataset>) -> Result<()> {
        let model = &self.setup.model;
        let all = Batch::new(data.features.view(), data.targets.view());
        all.check(model, self.setup.loss)?;
        let max_dim = self.ctx.limits().max_compute_workgroups_per_dimension as usize;
        if self.max_batch > max_dim {
            return Err(Error::Usage(format!(
                "batches of {} rows are over this device's {max_dim} workgroups per dimension for \
                 gathering on the GPU; stream the data instead",
                self.max_batch
            )));
        }
        let align = u64::from(self.ctx.limits().min_storage_buffer_offset_alignment);
        MemoryEstimate::for_pack(&self.setup, self.max_batch, align)
            .with_resident(data.rows(), model.inputs(), model.outputs())
            .check(self.ctx.device_memory(), RESIDENT_HINT)?;
        let ctx = self.ctx.clone();
        let resident = ctx.scoped("uploading the dataset to the GPU", || {
            let usage = wgpu::BufferUsages::COPY_DST;
            let upload = |name: String, bytes: &[u8]| -> Result<wgpu::Buffer> {
                let buffer = ctx.storage_buffer(&name, bytes.len() as u64, usage, RESIDENT_HINT)?;
                ctx.queue.write_buffer(&buffer, 0, bytes);
                Ok(buffer)
            };
            let (n, inputs, outputs) = (data.rows(), model.inputs(), model.outputs());
            let features = data.features.as_standard_layout();
            let features = upload(
                format!("dataset features [{n}, {inputs}]"),
                bytemuck::cast_slice(features.as_slice().expect("standard layout")),
            )?;
            let (dense, classes, class_targets) = match &data.targets {
                Targets::Classes(c) => (
                    upload("unused".into(), &[0; 4])?,
                    upload(format!("dataset classes [{n}]"), bytemuck::cast_slice(c))?,
                    true,
                ),
                Targets::Dense(d) => {
                    let d = d.as_standard_layout();
                    let bytes = bytemuck::cast_slice(d.as_slice().expect("standard layout"));
                    (
                        upload(format!("dataset targets [{n}, {outputs}]"), bytes)?,
                        upload("unused".into(), &[0; 4])?,
                        false,
                    )
                }
            };
            let bind_group = bind_in_order(
                &ctx.device,
                "gather",
                &self.ctx.kernels().gather_layout,
                [
                    &self.indices,
                    &features,
                    &dense,
                    &classes,
                    &self.input,
                    &self.dense_targets,
                    &self.class_targets,
                    &self.gather_dims,
                ]
                .map(|b| b.as_entire_binding()),
            );
            let width = inputs + if class_targets { 1 } else { outputs };
            Ok(Resident {
                rows: n,
                class_targets,
                gather: Dispatch {
                    kind: KernelKind::Gather,
                    pipeline: self.gather.clone(),
                    bind_group,
                    grid: Grid::Gather {
                        width: width as u32,
                    },
                },
            })
        })?;
        self.resident = Some(resident);
        Ok(())
    }

    fn step_resident(&mut self, indices: &[u32]) -> Result<()> {
        let resident = self.resident.as_ref().ok_or_else(|| {
            Error::Usage("step_resident needs a dataset: call load_resident first".into())
        })?;
        if let Some(&bad) = indices.iter().find(|&&i| i as usize >= resident.rows) {
            return Err(Error::Usage(format!(
                "row index {bad} is beyond the dataset's {} rows",
                resident.rows
            )));
        }
        let class_targets = resident.class_targets;
        let rows = self.check_rows(indices.len())?;
        let model = &self.setup.model;
        let dims = [
            rows,
            model.inputs() as u32,
            model.outputs() as u32,
            u32::from(class_targets),
        ];
        self.ctx
            .queue
            .write_buffer(&self.gather_dims, 0, bytemuck::cast_slice(&dims));
        self.ctx
            .queue
            .write_buffer(&self.indices, 0, bytemuck::cast_slice(indices));
        self.train_step(rows, class_targets, true)
    }
}
