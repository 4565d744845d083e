//! The fused optimizer update over the models that are not frozen, in chunks that fit a
//! binding, and clipping by global norm over gradients too large for one binding.

use super::GpuEngine;
use crate::error::Result;
use crate::gpu::ops::binding::range;
use crate::gpu::ops::dispatch::Dispatch;

impl GpuEngine {
    /// The optimizer's chunks: `(first model, models, start element, elements per model)` for
    /// each run of consecutive models that are not frozen, in as many models per binding as fit
    /// (or, for a model larger than a binding, a binding's worth of it at a time).
    pub(super) fn update_chunks(&self) -> Vec<(usize, usize, u64, u64)> {
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
    /// [`GpuEngine::update_chunks`]). Called once, and again whenever a model is frozen.
    pub(super) fn record_update(&mut self) {
        let (optimizer, buffers) = (&self.setup.members[0].optimizer, &self.buffers);
        let mut update = Vec::new();
        for (model, models, start, per_model) in self.update_chunks() {
            let len = models as u64 * per_model;
            let mut unused = buffers.unused_state.iter();
            let state = [0, 1, 2].map(|slot| match buffers.state_slot(slot) {
                Some(buffer) => range(buffer, start, len),
                None => unused
                    .next()
                    .expect("one placeholder per unused slot")
                    .as_entire_binding(),
            });
            let [s0, s1, s2] = state;
            update.push(self.ctx.kernels().optimizer.dispatch(
                &self.ctx,
                optimizer,
                (model, models, per_model),
                [
                    range(&buffers.params, start, len),
                    range(&buffers.grads, start, len),
                    s0,
                    s1,
                    s2,
                    buffers.coefficients.as_entire_binding(),
                    buffers.clip_scale.as_entire_binding(),
                    buffers.metrics_train.as_entire_binding(),
                ],
            ));
        }
        self.plan.update = update;
    }

    /// The launches of clipping by global norm over gradients that do not fit one binding of
    /// `binding` elements (see [`ClipOp::chunked`](crate::gpu::ops::clip::ClipOp::chunked)).
    pub(super) fn chunked_clip(&self, max_norm: f32, binding: u64) -> Result<Vec<Dispatch>> {
        self.ctx.kernels().clip.chunked(
            &self.ctx,
            &self.buffers.grads,
            &self.buffers.clip_scale,
            (self.models as u64, self.layout.total),
            (binding, self.layout.align),
            max_norm,
        )
    }
}
