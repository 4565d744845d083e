//! Building a GPU pack: the layout of its models' tensors, its layers, its buffers, the tiles
//! of its products (tuned together), and the dispatches of a step, recorded once.

use super::GpuEngine;
use super::buffers::Buffers;
use super::layers::GpuLayer;
use super::plan::Plan;
use crate::engine::PackSetup;
use crate::error::Result;
use crate::gpu::buffers::FlatLayout;
use crate::gpu::context::GpuContext;
use crate::gpu::profile::Profiling;

impl GpuEngine {
    /// Builds the engine (see [`GpuEngine::pack`], which checks its size first).
    pub(super) fn build(ctx: &GpuContext, setup: PackSetup, max_batch: usize) -> Result<Self> {
        let models = setup.members.len();
        let align = u64::from(ctx.limits().min_storage_buffer_offset_alignment);
        let layout = FlatLayout::new(&setup.model, align);
        let stats_layout = FlatLayout::buffers(&setup.model, align);
        let layers = GpuLayer::all(
            ctx,
            &setup.model,
            (&layout, &stats_layout),
            models,
            max_batch,
        )?;
        let buffers = Buffers::new(ctx, &setup, (&layout, &stats_layout), max_batch)?;
        // Every product is tuned before any is built, so that progress can count them: the
        // forward products layer by layer, then the backward ones last layer first.
        let forward = layers.iter().flat_map(GpuLayer::forward_products);
        let backward = layers.iter().rev().flat_map(GpuLayer::backward_products);
        ctx.tune(&forward.chain(backward).collect::<Vec<_>>())?;
        let (plan, uniforms) = Plan::record(ctx, &setup, &layout, &buffers, &layers, max_batch)?;
        let mut pack = Self {
            ctx: ctx.clone(),
            models,
            max_batch,
            layout,
            stats_layout,
            buffers,
            plan,
            uniforms,
            lrs: setup.members.iter().map(|m| m.optimizer.lr()).collect(),
            frozen: vec![false; models],
            clip_norm: None,
            resident: None,
            profiling: Profiling::default(),
            hand_over: None,
            steps: 0,
            batches_tracked: vec![0; models],
            mask_seed: 0,
            trained: false,
            setup,
        };
        pack.record_update();
        let members = std::mem::take(&mut pack.setup.members);
        for (k, member) in members.iter().enumerate() {
            pack.write_parameters(k, &member.parameters);
        }
        pack.setup.members = members;
        Ok(pack)
    }
}
