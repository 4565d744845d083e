//! The GPU engine's one-model constructor: a single model is an engine of one.

use super::context::GpuContext;
use super::pack::GpuPack;
use crate::engine::{PackSetup, Setup};
use crate::error::Result;
use crate::model::Parameters;

/// Trains K ≥ 1 models on a GPU through wgpu (see [`GpuPack`]).
pub type GpuEngine = GpuPack;

impl GpuPack {
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
