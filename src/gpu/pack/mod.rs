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

use super::buffers::{FlatLayout, UniformBlock};
use super::context::GpuContext;
use super::memory::MemoryEstimate;
use super::ops::binding::range;
use super::ops::clip::ClipParams;
use super::ops::dispatch::{Dispatch, Extent, KernelKind};
use super::ops::gather::GatherDims;
use super::ops::loss::{LAST_LOSS, LossDims, LossShape, METRICS_WORDS};
use super::ops::matmul::tuning::Product;
use super::ops::matmul::{Epilogue, MatmulDims, MatmulShape, MatmulTile, MatmulVariant};
use super::ops::reduce::{ColumnsShape, ReduceDims};
use crate::accumulate::Part;
use crate::data::Dataset;
use crate::engine::{
    Engine, Metrics, OptimizerState, PackSetup, Setup, check_clip_norm, check_learning_rates,
    check_model, check_optimizer_state,
};
use crate::error::{Error, Result};
use crate::loss::{Batch, Targets, TargetsView};
use crate::model::{Activation, Parameters};
use crate::optim::MAX_STATE_SLOTS;

mod build;
mod interface;
mod models;
mod profile;
mod step;
#[cfg(test)]
mod tests;
mod update;

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

/// Largest uniform block any kernel reads, in bytes.
const MAX_UNIFORM_BYTES: u64 = 48;

/// What a dispatch's shape uniform holds, as a function of the batch.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Matmul(MatmulShape),
    Loss(LossShape),
    Columns(ColumnsShape),
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
    /// Weight, bias and input gradients, last layer first, the weight and bias gradients
    /// written into the gradient buffer (a group's first batch).
    backward: Vec<Dispatch>,
    /// The same, the weight and bias gradients added to the gradient buffer (a group's later
    /// batches).
    backward_accumulate: Vec<Dispatch>,
    clip: Dispatch,
    /// Clipping in chunks, when the gradients do not fit one binding (built when clipping is
    /// turned on): each chunk's sum of squares, then each model's scale.
    clip_chunked: Vec<Dispatch>,
    /// The fused optimizer update over the models not frozen, one dispatch per bindable chunk.
    update: Vec<Dispatch>,
    /// Placeholders bound to the state slots the optimizer does not use.
    unused_state: Vec<wgpu::Buffer>,
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
    /// Rows, target kind and group rows the shape uniforms currently describe.
    current: Option<(u32, bool, usize)>,
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
    pub fn pack(ctx: &GpuContext, setup: PackSetup, max_batch: usize) -> Result<Self> {
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
}
