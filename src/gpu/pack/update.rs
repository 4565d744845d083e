//! The fused optimizer update over the models that are not frozen, in chunks that fit a
//! binding, and clipping by global norm over gradients too large for one binding.

use super::*;

impl GpuPack {
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
    /// [`GpuPack::update_chunks`]). Called once, and again whenever a model is frozen.
    pub(super) fn record_update(&mut self) {
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

    /// The launches of clipping by global norm over gradients that do not fit one binding:
    /// each model's gradients cut into chunks of at most `binding` elements (at aligned
    /// offsets), one launch per chunk for its sum of squares, then one for every model's scale.
    pub(super) fn chunked_clip(&self, max_norm: f32, binding: u64) -> Result<Vec<Dispatch>> {
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
}
