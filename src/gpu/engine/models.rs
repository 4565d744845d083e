//! Each model's parameters, optimizer state, learning rate and predictions: written into and
//! read out of the pack's flat buffers.

use ndarray::{Array2, ArrayView2};

use super::GpuEngine;
use crate::engine::check_model;
use crate::engine::{OptimizerState, check_optimizer_state};
use crate::error::{Error, Result};
use crate::gpu::context::GpuContext;
use crate::model::Parameters;

impl GpuEngine {
    /// The maximum number of rows per batch this pack was built for.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// The device this pack runs on.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Element offset of model `k`'s tensors in the flat buffers.
    pub(super) fn model_offset(&self, k: usize) -> u64 {
        k as u64 * self.layout.total
    }

    /// Queues the upload of model `k`'s parameters into the flat parameter buffer, its running
    /// statistics into the statistics buffer, and keeps its count of training passes.
    pub(super) fn write_parameters(&mut self, k: usize, params: &Parameters) {
        let flat = self.layout.pack(params);
        self.ctx.queue.write_buffer(
            &self.buffers.params,
            self.model_offset(k) * 4,
            bytemuck::cast_slice(&flat),
        );
        if self.stats_layout.total > 0 {
            let stats = self.stats_layout.pack(params);
            self.ctx.queue.write_buffer(
                &self.buffers.stats,
                k as u64 * self.stats_layout.total * 4,
                bytemuck::cast_slice(&stats),
            );
        }
        self.batches_tracked[k] = params.batches_tracked();
    }

    /// Model `k`'s parameters, its running statistics and its count of training passes.
    pub(super) fn read_parameters(&self, k: usize) -> Result<Parameters> {
        let mut params = self.read_model(&self.buffers.params, k, "the parameters")?;
        if self.stats_layout.total > 0 {
            let total = self.stats_layout.total;
            let flat = self.ctx.read_back(
                &self.buffers.stats,
                k as u64 * total * 4,
                total * 4,
                "the running statistics",
            )?;
            self.stats_layout.fill(&flat, &mut params);
        }
        params.set_batches_tracked(self.batches_tracked[k]);
        Ok(params)
    }

    /// Reads model `k`'s share of a flat buffer back, as parameters.
    pub(super) fn read_model(
        &self,
        buffer: &wgpu::Buffer,
        k: usize,
        what: &str,
    ) -> Result<Parameters> {
        check_model(k, self.models)?;
        let flat = self.ctx.read_back(
            buffer,
            self.model_offset(k) * 4,
            self.layout.total * 4,
            what,
        )?;
        Ok(self.layout.unpack(&flat, &self.setup.model))
    }

    /// Refuses an empty batch, or one larger than the engine was built for.
    pub(super) fn check_rows(&self, rows: usize) -> Result<u32> {
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

    /// Model `k`'s outputs for `features` (`[rows, inputs]` → `[rows, outputs]`).
    pub(super) fn predict_outputs(
        &mut self,
        k: usize,
        features: ArrayView2<'_, f32>,
    ) -> Result<Array2<f32>> {
        check_model(k, self.models)?;
        let model = &self.setup.model;
        model.check_features(&features)?;
        let outputs = model.outputs();
        let mut result = Vec::with_capacity(features.nrows() * outputs);
        let class_targets = self.uniforms.class_targets();
        let offset = (k * self.max_batch * outputs * 4) as u64;
        for chunk in features.axis_chunks_iter(ndarray::Axis(0), self.max_batch) {
            let rows = self.check_rows(chunk.nrows())?;
            self.upload_features(chunk);
            self.prepare_shapes(rows, class_targets);
            self.submit(&[&self.plan.forward_eval], rows);
            let bytes = u64::from(rows) * outputs as u64 * 4;
            result.extend(self.ctx.read_back(
                &self.buffers.output().post,
                offset,
                bytes,
                "predictions",
            )?);
        }
        Ok(Array2::from_shape_vec((features.nrows(), outputs), result)
            .expect("one output row per feature row"))
    }

    /// Model `k`'s optimizer state.
    pub(super) fn read_optimizer_state(&mut self, k: usize) -> Result<OptimizerState> {
        check_model(k, self.models)?;
        let mut slots = Vec::new();
        for slot in self.setup.members[k].optimizer.state_slots() {
            let buffer = self
                .buffers
                .state_slot(slot.index)
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
    pub(super) fn write_optimizer_state(&mut self, k: usize, state: &OptimizerState) -> Result<()> {
        check_model(k, self.models)?;
        check_optimizer_state(&self.setup.setup(k), state)?;
        let slots = self.setup.members[k].optimizer.state_slots();
        for (slot, (_, values)) in slots.iter().zip(&state.slots) {
            let buffer = self
                .buffers
                .state_slot(slot.index)
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
