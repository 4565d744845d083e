//! The [`Engine`] trait on the GPU engine.

use ndarray::{Array2, ArrayView2};

use super::*;

impl Engine for GpuEngine {
    fn describe(&self) -> String {
        format!("gpu: {}", self.ctx.describe())
    }

    fn models(&self) -> usize {
        self.models
    }

    fn setup(&self, k: usize) -> Setup {
        self.setup.setup(k)
    }

    fn accumulate(&mut self, batch: &Batch<'_>, part: Part) -> Result<()> {
        self.accumulate_batch(batch, part, None)
    }

    fn accumulate_into(
        &mut self,
        batch: &Batch<'_>,
        part: Part,
        sink: &mut dyn GradientSink,
    ) -> Result<()> {
        check_open(part)?;
        self.accumulate_batch(batch, part, Some(sink))
    }

    fn accumulate_resident_into(
        &mut self,
        indices: &[u32],
        part: Part,
        sink: &mut dyn GradientSink,
    ) -> Result<()> {
        check_open(part)?;
        self.accumulate_gathered(indices, part, Some(sink))
    }

    fn set_flat_gradients(&mut self, k: usize, flat: &[f32]) -> Result<()> {
        self.write_flat_gradients(k, flat)
    }

    fn apply_update(&mut self) -> Result<()> {
        self.update_now()
    }

    fn set_gradients(&mut self, k: usize, gradients: &Parameters) -> Result<()> {
        self.write_gradients(k, gradients)
    }

    fn predict(&mut self, k: usize, features: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.predict_outputs(k, features)
    }

    fn optimizer_state(&mut self, k: usize) -> Result<OptimizerState> {
        self.read_optimizer_state(k)
    }

    fn set_optimizer_state(&mut self, k: usize, state: &OptimizerState) -> Result<()> {
        self.write_optimizer_state(k, state)
    }

    fn learning_rates(&self) -> Vec<f64> {
        self.lrs.clone()
    }

    fn last_losses(&mut self) -> Result<Vec<f32>> {
        if self.steps == 0 && !self.trained {
            return Err(Error::NoStepYet);
        }
        let bytes = METRICS_WORDS * 4 * self.models as u64;
        let raw = self
            .ctx
            .read_back(&self.buffers.metrics_train, 0, bytes, "the loss")?;
        Ok(raw
            .chunks_exact(METRICS_WORDS as usize)
            .map(|m| m[LAST_LOSS])
            .collect())
    }

    fn gradients(&mut self, k: usize) -> Result<Parameters> {
        self.read_model(&self.buffers.grads, k, "the gradients")
    }

    fn parameters(&mut self, k: usize) -> Result<Parameters> {
        self.read_parameters(k)
    }

    fn set_parameters(&mut self, k: usize, parameters: &Parameters) -> Result<()> {
        check_model(k, self.models)?;
        parameters.check_shapes(&self.setup.model)?;
        self.write_parameters(k, parameters);
        self.ctx.check_errors("uploading parameters")
    }

    /// True on a software adapter (lavapipe, WARP), which computes on the host's cores.
    fn runs_on_host(&self) -> bool {
        self.ctx.info().device_type == wgpu::DeviceType::Cpu
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn synchronize(&mut self) -> Result<()> {
        self.ctx.wait("waiting for submitted steps")
    }

    fn set_learning_rates(&mut self, lrs: &[f64]) -> Result<()> {
        check_learning_rates(self.setup.members.iter().map(|m| &m.optimizer), lrs)?;
        self.lrs.copy_from_slice(lrs);
        Ok(())
    }

    fn set_clip_norm(&mut self, max_norm: Option<f32>) -> Result<()> {
        check_clip_norm(max_norm)?;
        match max_norm {
            Some(norm) => {
                let binding = self.ctx.limits().max_storage_buffer_binding_size / 4;
                if self.models as u64 * self.layout.total <= binding {
                    let params = ClipParams {
                        count: self.layout.total as u32,
                        max_norm: norm,
                        stride: self.layout.total as u32,
                        _pad: 0,
                    };
                    self.ctx.queue.write_buffer(
                        &self.buffers.clip_params,
                        0,
                        bytemuck::bytes_of(&params),
                    );
                } else {
                    self.plan.clip_chunked = self.chunked_clip(norm, binding)?;
                }
            }
            None => self.ctx.queue.write_buffer(
                &self.buffers.clip_scale,
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
            self.ctx
                .queue
                .write_buffer(&self.buffers.frozen, 4 * k as u64, &1u32.to_le_bytes());
            self.record_update();
            self.ctx.check_errors("freezing a model")?;
        }
        Ok(())
    }

    fn take_metrics(&mut self) -> Result<Vec<Metrics>> {
        self.take(&self.buffers.metrics_train, "the training metrics")
    }

    fn evaluate(&mut self, batch: &Batch<'_>) -> Result<Vec<Metrics>> {
        batch.check(&self.setup.model, self.setup.loss)?;
        self.ctx.queue.write_buffer(
            &self.buffers.metrics_eval,
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
            self.submit(&[&self.plan.forward_eval, &self.plan.loss_eval], rows);
        }
        self.take(&self.buffers.metrics_eval, "the evaluation metrics")
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
            let width = if class_targets { 1 } else { outputs };
            let gather = self.ctx.kernels().gather.dispatch(
                inputs,
                width,
                [
                    &self.buffers.indices,
                    &features,
                    &dense,
                    &classes,
                    &self.buffers.input,
                    &self.buffers.dense_targets,
                    &self.buffers.class_targets,
                    &self.buffers.gather_dims,
                ]
                .map(|b| b.as_entire_binding()),
            );
            Ok(Resident {
                rows: n,
                class_targets,
                gather,
            })
        })?;
        self.resident = Some(resident);
        Ok(())
    }

    fn set_mask_seed(&mut self, seed: u64) {
        self.mask_seed = seed;
    }

    fn accumulate_resident(&mut self, indices: &[u32], part: Part) -> Result<()> {
        self.accumulate_gathered(indices, part, None)
    }
}
