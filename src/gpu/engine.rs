//! The GPU engine: one model, trained by a [`GpuPack`] of one. Parameters, gradients and
//! optimizer state stay in GPU buffers for the whole run; a step is one submitted command
//! buffer, and nothing is read back unless the caller asks.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use super::context::GpuContext;
use super::ops::dispatch::KernelKind;
use super::pack::GpuPack;
use crate::data::Dataset;
use crate::engine::{Engine, Metrics, OptimizerState, Setup};
use crate::error::Result;
use crate::loss::Batch;
use crate::model::Parameters;
use crate::pack::{Member, Pack, PackSetup};

/// Trains a model on a GPU through wgpu.
#[derive(Debug)]
pub struct GpuEngine {
    pack: GpuPack,
    setup: Setup,
}

impl GpuEngine {
    /// An engine on `ctx` training `setup.model` from `params`, for batches of at most
    /// `max_batch` rows. Fails with a message naming the tensor when a buffer would exceed the
    /// device's limits.
    pub fn new(
        ctx: &GpuContext,
        setup: Setup,
        params: &Parameters,
        max_batch: usize,
    ) -> Result<Self> {
        let pack = GpuPack::new(
            ctx,
            PackSetup {
                model: setup.model.clone(),
                loss: setup.loss,
                members: vec![Member {
                    optimizer: setup.optimizer,
                    parameters: params.clone(),
                }],
            },
            max_batch,
        )?;
        Ok(Self { pack, setup })
    }

    /// The maximum number of rows per batch this engine was built for.
    pub fn max_batch(&self) -> usize {
        self.pack.max_batch()
    }

    /// The device this engine runs on.
    pub fn context(&self) -> &GpuContext {
        self.pack.context()
    }

    /// Kernel launches in one training step (see [`GpuPack::dispatches_per_step`]).
    pub fn dispatches_per_step(&self) -> usize {
        self.pack.dispatches_per_step()
    }

    /// Turns on GPU timing of every submitted pass with timestamp queries; `false` when the
    /// device cannot (time on the host instead).
    pub fn enable_gpu_timing(&mut self) -> bool {
        self.pack.enable_gpu_timing()
    }

    /// Times every kernel launch of the next step (see [`GpuPack::profile_next_step`]).
    pub fn profile_next_step(&mut self) -> bool {
        self.pack.profile_next_step()
    }

    /// The profiled step's launches and their GPU seconds (see [`GpuPack::take_profile`]).
    pub fn take_profile(&mut self) -> Result<Option<Vec<(KernelKind, f64)>>> {
        self.pack.take_profile()
    }

    /// GPU time of the last submitted pass, in seconds, from its timestamps (reads back).
    pub fn last_gpu_seconds(&mut self) -> Result<Option<f64>> {
        self.pack.last_gpu_seconds()
    }
}

/// The one model of a pack of one.
fn only<T>(values: Vec<T>) -> T {
    values
        .into_iter()
        .next()
        .expect("a pack of one returns one value")
}

impl Engine for GpuEngine {
    fn describe(&self) -> String {
        self.pack.describe()
    }

    fn setup(&self) -> &Setup {
        &self.setup
    }

    fn step(&mut self, batch: &Batch<'_>) -> Result<()> {
        self.pack.step(batch)
    }

    fn last_loss(&mut self) -> Result<f32> {
        self.pack.last_losses().map(only)
    }

    fn gradients(&mut self) -> Result<Parameters> {
        self.pack.gradients(0)
    }

    fn parameters(&mut self) -> Result<Parameters> {
        self.pack.parameters(0)
    }

    fn set_parameters(&mut self, parameters: &Parameters) -> Result<()> {
        self.pack.set_parameters(0, parameters)
    }

    fn predict(&mut self, features: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.pack.predict(0, features)
    }

    fn steps(&self) -> u64 {
        self.pack.steps()
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        self.pack.set_learning_rates(&[lr])
    }

    fn learning_rate(&self) -> f64 {
        self.pack.learning_rate(0)
    }

    fn set_clip_norm(&mut self, max_norm: Option<f32>) -> Result<()> {
        self.pack.set_clip_norm(max_norm)
    }

    fn take_metrics(&mut self) -> Result<Metrics> {
        self.pack.take_metrics().map(only)
    }

    fn evaluate(&mut self, batch: &Batch<'_>) -> Result<Metrics> {
        self.pack.evaluate(batch).map(only)
    }

    fn optimizer_state(&mut self) -> Result<OptimizerState> {
        self.pack.optimizer_state(0)
    }

    fn set_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.pack.set_optimizer_state(0, state)
    }

    fn load_resident(&mut self, data: Arc<Dataset>) -> Result<()> {
        self.pack.load_resident(data)
    }

    fn step_resident(&mut self, indices: &[u32]) -> Result<()> {
        self.pack.step_resident(indices)
    }

    fn synchronize(&mut self) -> Result<()> {
        self.pack.synchronize()
    }
}
