//! The GPU engine: K ≥ 1 models of one architecture trained side by side (a single model is an
//! engine of one). Parameters, gradients and optimizer state stay in GPU buffers for the
//! whole run, model after model in one flat buffer each. Every buffer, bind group and pipeline
//! is created once; a step uploads the batch, records forward, loss, backward and the fused
//! optimizer update into one command buffer and submits it once, without waiting for it. Each
//! kernel covers all K models in one dispatch (the model index is the grid's z dimension, with
//! per-operand strides between models; the input batch and targets are shared). Nothing is read
//! back unless the caller asks.
//!
//! `buffers.rs` creates the buffers, `layers/` holds each kind of layer (its products and the
//! recording of its forward and backward passes, through `recorder.rs`), `plan.rs`
//! records a step piece by piece (`build.rs` puts them together), `step.rs` runs it,
//! `hand_over.rs` hands gradients over bucket by bucket during backward, `update.rs` records
//! the optimizer update, `models.rs` moves each model's tensors in and out,
//! `profile.rs` times steps, and `interface.rs` implements the [`Engine`](crate::engine::Engine)
//! trait.

use buffers::Buffers;
use buffers::{MEMORY_HINT, PACK_MEMORY_HINT};
use plan::{Plan, Uniforms};

use super::buffers::FlatLayout;
use super::context::GpuContext;
use super::memory::MemoryEstimate;
use super::ops::dispatch::Dispatch;
use super::ops::matmul::MatmulTile;
use super::profile::Profiling;
use crate::engine::PackSetup;
use crate::error::{Error, Result};

// What the Engine trait's implementation (interface.rs, which takes this module's names whole)
// uses besides.
use std::sync::Arc;

use buffers::RESIDENT_HINT;

use super::ops::clip::ClipParams;
use super::ops::loss::{LAST_LOSS, METRICS_WORDS};
use crate::accumulate::Part;
use crate::data::Dataset;
use crate::engine::{
    Engine, Metrics, OptimizerState, Setup, check_clip_norm, check_learning_rates, check_model,
};
use crate::gradient_buckets::{GradientSink, check_open};
use crate::loss::{Batch, Targets, TargetsView};
use crate::model::{Layer, Parameters};

mod buffers;
mod build;
mod hand_over;
mod interface;
mod layers;
mod models;
mod plan;
mod profile;
mod recorder;
mod step;
#[cfg(test)]
mod tests;
mod update;

/// Trains K models of one architecture side by side on a GPU through wgpu (see the module
/// documentation).
pub struct GpuEngine {
    ctx: GpuContext,
    setup: PackSetup,
    models: usize,
    max_batch: usize,
    /// Where each tensor sits in each model's share of the flat buffers, `layout.total`
    /// elements apart.
    layout: FlatLayout,
    /// Where each running statistic sits in each model's share of the statistics buffer.
    stats_layout: FlatLayout,
    /// Each model's training passes (its batch norms' `num_batches_tracked`).
    batches_tracked: Vec<u64>,
    /// Every buffer a step reads or writes.
    buffers: Buffers,
    /// The recorded dispatches of a step.
    plan: Plan,
    /// The dispatches' shape uniforms and the optimizer coefficients.
    uniforms: Uniforms,
    /// Each model's learning rate for its next step.
    lrs: Vec<f64>,
    /// The models no longer updated.
    frozen: Vec<bool>,
    clip_norm: Option<f32>,
    resident: Option<Resident>,
    /// Timestamp queries, when turned on.
    profiling: Profiling,
    steps: u64,
    /// The seed dropout's masks are keyed by.
    mask_seed: u64,
    /// Whether a mini-batch has run, so that a last loss exists (before any update, with
    /// gradients being accumulated).
    trained: bool,
    /// The staging buffers of the buckets handed over during backward, once asked for.
    hand_over: Option<hand_over::HandOver>,
}

impl std::fmt::Debug for GpuEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuEngine")
            .field("adapter", &self.ctx.describe())
            .field("model", &self.setup.model)
            .field("models", &self.models)
            .field("max_batch", &self.max_batch)
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

/// A dataset kept on the GPU, and the dispatch that gathers a batch of it.
struct Resident {
    rows: usize,
    class_targets: bool,
    gather: Dispatch,
}

impl GpuEngine {
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
            .map(|l| l.inputs().max(l.outputs()))
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
        // A layer norm takes a workgroup per row, dropout a row of workgroups per row.
        let per_row = setup
            .model
            .layers()
            .iter()
            .any(|l| matches!(l, Layer::LayerNorm(_) | Layer::Dropout(_)));
        if per_row && max_batch > max_dim as usize {
            return Err(Error::Usage(format!(
                "a batch of {max_batch} rows needs more than this device's {max_dim} workgroups \
                 per dimension for its layer norms or dropout; use a batch size of at most \
                 {max_dim}"
            )));
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

impl GpuEngine {
    /// An engine on `ctx` training one model, `setup.model`, from `params`, for batches of at
    /// most `max_batch` rows. Fails with a message naming the tensor when a buffer would exceed
    /// the device's limits.
    pub fn new(
        ctx: &GpuContext,
        setup: Setup,
        params: &Parameters,
        max_batch: usize,
    ) -> Result<Self> {
        Self::pack(ctx, PackSetup::one(setup, params), max_batch)
    }
}
