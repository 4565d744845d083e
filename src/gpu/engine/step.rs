//! One step on the device: the shape uniforms, the batch's upload, the recording of the
//! step's dispatches into one command buffer and its submit, and the metrics' read-back.

use ndarray::ArrayView2;

use super::GpuEngine;
use crate::accumulate::Part;
use crate::engine::Metrics;
use crate::engine::{check_model, check_training_rows};
use crate::error::{Error, Result};
use crate::gpu::ops::dispatch::Dispatch;
use crate::gpu::ops::dropout::MaskKeyUniform;
use crate::gpu::ops::gather::GatherDims;
use crate::gpu::ops::loss::{LAST_LOSS, METRICS_WORDS};
use crate::gpu::profile::PROFILE_CAPACITY;
use crate::gradient_buckets::GradientSink;
use crate::loss::{Batch, TargetsView};
use crate::model::Parameters;

impl GpuEngine {
    /// Rewrites the shape uniforms when the batch's row count or target kind changed, for a
    /// batch that is a group of its own.
    pub(super) fn prepare_shapes(&mut self, rows: u32, class_targets: bool) {
        self.uniforms
            .prepare(&self.ctx.queue, rows, class_targets, rows as usize);
    }

    /// Queues the upload of a batch's features and targets.
    pub(super) fn upload_batch(&self, batch: &Batch<'_>) {
        self.upload_features(batch.features);
        let queue = &self.ctx.queue;
        match batch.targets {
            TargetsView::Classes(classes) => queue.write_buffer(
                &self.buffers.class_targets,
                0,
                bytemuck::cast_slice(classes),
            ),
            TargetsView::Dense(values) => {
                let values = values.as_standard_layout();
                let values = values.as_slice().expect("standard layout is contiguous");
                queue.write_buffer(&self.buffers.dense_targets, 0, bytemuck::cast_slice(values));
            }
        }
    }

    /// Forward, loss and backward of `batch` as `part` of a group of batches that make one
    /// optimizer step, recorded into one command buffer and submitted once, without waiting.
    ///
    /// Each row's output gradient is divided by `N(part.group_rows)` (the loss's
    /// [`normalizer`](crate::loss::Loss::normalizer)), so that the group's gradient is
    /// `g = Σ_i r_i/R · ∇L_i`, `L_i` being batch `i`'s mean loss, `r_i` its rows and
    /// `R = part.group_rows` (see [`crate::accumulate`]); the loss metrics keep each batch's own
    /// mean `L_i`. With `part.first` the weight and bias gradients overwrite the gradient
    /// buffers, `g ← r_i/R · ∇L_i`; otherwise they are added, `g ← g + r_i/R · ∇L_i`. With
    /// `part.last` the update follows in the same submit: clipping by global norm when it is on,
    /// `g ← g · min(1, max_norm / (‖g‖₂ + 1e-6))`, then the fused optimizer update
    /// `θ ← update(θ, g)`, and the step count rises by one.
    ///
    /// [`Part::whole`] makes this an ordinary training step
    /// ([`Engine::step`](crate::engine::Engine::step)), bit for bit.
    /// Fails with [`Error::Usage`] when `part.group_rows` is below the batch's rows.
    ///
    /// With a `sink`, each bucket of gradients is handed over as backward finishes it
    /// ([`Engine::accumulate_into`](crate::engine::Engine::accumulate_into)).
    pub(super) fn accumulate_batch(
        &mut self,
        batch: &Batch<'_>,
        part: Part,
        sink: Option<&mut dyn GradientSink>,
    ) -> Result<()> {
        batch.check(&self.setup.model, self.setup.loss)?;
        let rows = self.check_rows(batch.rows())?;
        check_training_rows(&self.setup.model, batch.rows())?;
        part.check(batch.rows())?;
        self.upload_batch(batch);
        self.key_masks(batch.rows_in_dataset, false);
        let class_targets = matches!(batch.targets, TargetsView::Classes(_));
        self.train_step(rows, class_targets, false, part, sink)
    }

    /// [`Engine::accumulate`](crate::engine::Engine::accumulate) on the rows `indices` of the dataset kept on the device by
    /// [`Engine::load_resident`](crate::engine::Engine::load_resident), gathered there in the same
    /// submit.
    pub(super) fn accumulate_gathered(
        &mut self,
        indices: &[u32],
        part: Part,
        sink: Option<&mut dyn GradientSink>,
    ) -> Result<()> {
        let resident = self.resident.as_ref().ok_or_else(|| {
            Error::Usage(
                "training on resident rows needs a dataset: call load_resident first".into(),
            )
        })?;
        if let Some(&bad) = indices.iter().find(|&&i| i as usize >= resident.rows) {
            return Err(Error::Usage(format!(
                "row index {bad} is beyond the dataset's {} rows",
                resident.rows
            )));
        }
        let class_targets = resident.class_targets;
        let rows = self.check_rows(indices.len())?;
        check_training_rows(&self.setup.model, indices.len())?;
        part.check(indices.len())?;
        let model = &self.setup.model;
        let dims = GatherDims {
            rows,
            inputs: model.inputs() as u32,
            outputs: model.outputs() as u32,
            class_targets: u32::from(class_targets),
        };
        self.ctx
            .queue
            .write_buffer(&self.buffers.gather_dims, 0, bytemuck::bytes_of(&dims));
        self.ctx
            .queue
            .write_buffer(&self.buffers.indices, 0, bytemuck::cast_slice(indices));
        self.key_masks(None, true);
        self.train_step(rows, class_targets, true, part, sink)
    }

    /// The optimizer update on the gradients as they are, in one submit: clipping by global
    /// norm when it is on, `g ← g · min(1, max_norm / (‖g‖₂ + 1e-6))`, then
    /// `θ ← update(θ, g)` for every model that is not frozen; the step count rises by one. For a
    /// caller that accumulated a group with `last = false` and then changed the gradients
    /// itself (summed them across devices, say, through [`Engine::set_gradients`](crate::engine::Engine::set_gradients)).
    pub(super) fn update_now(&mut self) -> Result<()> {
        self.write_coefficients();
        let clip = self.clip_dispatches();
        self.submit(&[clip, &self.plan.update], 0);
        self.ctx
            .check_errors(&format!("running the update of step {}", self.steps))
    }

    /// Replaces model `k`'s gradients, the inverse of
    /// [`Engine::gradients`](crate::engine::Engine::gradients): the next [`Engine::apply_update`](crate::engine::Engine::apply_update) (or
    /// a batch accumulated with `first = false`) starts from them.
    pub(super) fn write_gradients(&mut self, k: usize, gradients: &Parameters) -> Result<()> {
        check_model(k, self.models)?;
        gradients.check_shapes(&self.setup.model)?;
        let flat = self.layout.pack(gradients);
        self.ctx.queue.write_buffer(
            &self.buffers.grads,
            self.model_offset(k) * 4,
            bytemuck::cast_slice(&flat),
        );
        self.ctx.check_errors("uploading gradients")
    }

    /// Replaces model `k`'s gradients with `flat`, its trained tensors' values one after
    /// another ([`Engine::set_flat_gradients`](crate::engine::Engine::set_flat_gradients)).
    pub(super) fn write_flat_gradients(&mut self, k: usize, flat: &[f32]) -> Result<()> {
        check_model(k, self.models)?;
        let expected: u64 = self.layout.tensors().map(|t| t.len).sum();
        if flat.len() as u64 != expected {
            return Err(Error::Shape {
                what: "flat gradient".into(),
                expected: format!("{expected} values"),
                got: format!("{} values", flat.len()),
            });
        }
        let mut at = 0;
        for slice in self.layout.tensors() {
            let values = &flat[at..at + slice.len as usize];
            at += values.len();
            self.ctx.queue.write_buffer(
                &self.buffers.grads,
                (self.model_offset(k) + slice.offset) * 4,
                bytemuck::cast_slice(values),
            );
        }
        self.ctx.check_errors("uploading gradients")
    }

    /// For a model with dropout, queues the upload of the coming training pass's mask key (the
    /// run's seed, the step being computed, whether the indices buffer holds the rows' dataset
    /// indices: `gathered` rows, or streamed ones given with their `rows` indices, uploaded
    /// here); nothing for a model without.
    fn key_masks(&self, rows: Option<&[u32]>, gathered: bool) {
        if self.setup.model.dropout() == 0.0 {
            return;
        }
        if let Some(indices) = rows {
            self.ctx
                .queue
                .write_buffer(&self.buffers.indices, 0, bytemuck::cast_slice(indices));
        }
        let key = MaskKeyUniform {
            step: self.steps as u32,
            seed_lo: self.mask_seed as u32,
            seed_hi: (self.mask_seed >> 32) as u32,
            has_rows: u32::from(gathered || rows.is_some()),
        };
        self.ctx
            .queue
            .write_buffer(&self.buffers.mask_key, 0, bytemuck::bytes_of(&key));
    }

    /// Counts the coming step and queues the upload of each model's optimizer coefficients
    /// for it.
    fn write_coefficients(&mut self) {
        self.steps += 1;
        self.uniforms.coefficient_bytes.clear();
        for (member, &lr) in self.setup.members.iter().zip(&self.lrs) {
            let c = member.optimizer.with_lr(lr).coefficients(self.steps);
            self.uniforms
                .coefficient_bytes
                .extend_from_slice(c.as_bytes());
        }
        self.ctx.queue.write_buffer(
            &self.buffers.coefficients,
            0,
            &self.uniforms.coefficient_bytes,
        );
    }

    /// The clipping launches: none when clipping is off, one over a binding of all models'
    /// gradients, or the chunked ones.
    pub(super) fn clip_dispatches(&self) -> &[Dispatch] {
        match (self.clip_norm, self.plan.clip_chunked.is_empty()) {
            (None, _) => &[],
            (Some(_), true) => std::slice::from_ref(&self.plan.clip),
            (Some(_), false) => &self.plan.clip_chunked[..],
        }
    }

    /// Records and submits `part` of a group on the batch now in the input buffers (or, with
    /// `gathered`, on the rows the gather dispatch will copy there first): see
    /// [`Engine::accumulate`](crate::engine::Engine::accumulate).
    ///
    /// With a `sink`, `part` must not be the last of its group: backward is submitted bucket by
    /// bucket and each bucket of gradients handed over as soon as it is read back
    /// (`hand_over.rs`).
    fn train_step(
        &mut self,
        rows: u32,
        class_targets: bool,
        gathered: bool,
        part: Part,
        sink: Option<&mut dyn GradientSink>,
    ) -> Result<()> {
        self.uniforms
            .prepare(&self.ctx.queue, rows, class_targets, part.group_rows);
        self.trained = true;
        if self.setup.model.has_running_statistics() {
            for (count, &frozen) in self.batches_tracked.iter_mut().zip(&self.frozen) {
                *count += u64::from(!frozen);
            }
        }
        if part.last {
            self.write_coefficients();
        }
        if let Some(sink) = sink {
            self.hand_over_step(gathered, rows, part, sink)?;
            return self.ctx.check_errors(&format!(
                "running a mini-batch of training step {}",
                self.steps + 1
            ));
        }
        let gather = self.gather(gathered);
        let backward = if part.first {
            &self.plan.backward
        } else {
            &self.plan.backward_accumulate
        };
        let (clip, update) = if part.last {
            (self.clip_dispatches(), &self.plan.update[..])
        } else {
            (&[][..], &[][..])
        };
        self.submit(
            &[
                gather,
                &self.plan.forward,
                &self.plan.loss_train,
                backward,
                clip,
                update,
            ],
            rows,
        );
        self.ctx.check_errors(&if part.last {
            format!("running training step {}", self.steps)
        } else {
            format!("running a mini-batch of training step {}", self.steps + 1)
        })
    }

    /// The dispatch that gathers a batch of the resident dataset, when the batch is `gathered`.
    pub(super) fn gather(&self, gathered: bool) -> &[Dispatch] {
        match (&self.resident, gathered) {
            (Some(resident), true) => std::slice::from_ref(&resident.gather),
            _ => &[],
        }
    }

    /// Reads a metrics buffer back and zeroes its totals (keeping each model's last loss).
    pub(super) fn take(&self, buffer: &wgpu::Buffer, what: &str) -> Result<Vec<Metrics>> {
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
    pub(super) fn upload_features(&self, features: ArrayView2<'_, f32>) {
        let features = features.as_standard_layout();
        let values = features.as_slice().expect("standard layout is contiguous");
        self.ctx
            .queue
            .write_buffer(&self.buffers.input, 0, bytemuck::cast_slice(values));
    }

    /// Records `dispatches` into one compute pass and submits it (when profiling, each into a
    /// pass of its own between two timestamps).
    pub(super) fn submit(&self, dispatches: &[&[Dispatch]], rows: u32) {
        let max_dim = self.ctx.limits().max_compute_workgroups_per_dimension;
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        if let Some(profile) = &self.profiling.profile {
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
                dispatch.record(&mut pass, rows, max_dim, self.models as u32);
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
                timestamp_writes: self.profiling.timing.as_ref().map(|t| {
                    wgpu::ComputePassTimestampWrites {
                        query_set: &t.queries,
                        beginning_of_pass_write_index: Some(0),
                        end_of_pass_write_index: Some(1),
                    }
                }),
            });
            for dispatch in dispatches.iter().flat_map(|d| d.iter()) {
                dispatch.record(&mut pass, rows, max_dim, self.models as u32);
            }
        }
        if let Some(t) = &self.profiling.timing {
            encoder.resolve_query_set(&t.queries, 0..2, &t.resolved, 0);
        }
        self.ctx.queue.submit([encoder.finish()]);
    }
}
