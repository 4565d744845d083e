//! A mini-batch whose gradients are handed over bucket by bucket while backward runs
//! ([`crate::gradient_buckets`]): the step is submitted in pieces, forward, loss and the
//! backward of the first bucket's layers, then each following bucket's backward; after each
//! piece one copy moves that bucket's gradients (every model's) into a staging buffer of its
//! own, mapped for reading. The host waits for the first bucket's copy only, hands it over and
//! waits for the next while the device goes on with backward: one read-back per bucket, into
//! buffers made at the first such step and kept.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use super::GpuEngine;
use crate::accumulate::Part;
use crate::error::{Error, Result};
use crate::gpu::ops::dispatch::Dispatch;
use crate::gradient_buckets::{GradientBuckets, GradientSink};

/// A staging buffer's map request: not yet answered, mapped, or failed.
const PENDING: u8 = 0;
const MAPPED: u8 = 1;
const FAILED: u8 = 2;

/// One bucket's read-back.
struct Staged {
    /// Its elements in one model's share of the gradient buffer.
    span: Range<u64>,
    /// Every model's span, one after another.
    staging: wgpu::Buffer,
    /// The state of its map request.
    mapped: Arc<AtomicU8>,
    /// The submission of its copy in the step under way.
    copied: Option<wgpu::SubmissionIndex>,
}

/// The staging buffers of every bucket, and where each tensor sits in a model's share of the
/// flat gradient buffer.
pub(super) struct HandOver {
    buckets: GradientBuckets,
    staged: Vec<Staged>,
    /// For each tensor of the model (its index in `ModelSpec::tensors`), its offset and length
    /// in a model's share of the gradient buffer; `None` for buffers (no gradient).
    tensors: Vec<Option<(u64, u64)>>,
}

impl GpuEngine {
    /// Makes the staging buffers for `buckets` when the buckets change (the first time).
    fn prepare_hand_over(&mut self, buckets: &GradientBuckets) {
        if self
            .hand_over
            .as_ref()
            .is_some_and(|h| &h.buckets == buckets)
        {
            return;
        }
        let tensors: Vec<Option<(u64, u64)>> = self
            .setup
            .model
            .tensors()
            .iter()
            .map(|t| {
                t.trained.then(|| {
                    let slice = self.layout.tensor(&t.name);
                    (slice.offset, slice.len)
                })
            })
            .collect();
        let staged = buckets
            .buckets()
            .iter()
            .map(|bucket| {
                let placed = || bucket.tensors.iter().filter_map(|&t| tensors[t]);
                let start = placed().map(|(o, _)| o).min().unwrap_or(0);
                let end = placed().map(|(o, l)| o + l).max().unwrap_or(start);
                let bytes = (end - start) * 4 * self.models as u64;
                Staged {
                    span: start..end,
                    staging: self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("gradient bucket"),
                        size: bytes.max(4),
                        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    }),
                    mapped: Arc::new(AtomicU8::new(PENDING)),
                    copied: None,
                }
            })
            .collect();
        self.hand_over = Some(HandOver {
            buckets: buckets.clone(),
            staged,
            tensors,
        });
    }

    /// Submits the step's pieces (`head`, the dispatches before backward, then backward bucket
    /// by bucket), each followed by its bucket's read-back, and hands every bucket to `sink` as
    /// soon as its read-back lands. `part` is not the last of its group: no update follows.
    pub(super) fn hand_over_step(
        &mut self,
        gathered: bool,
        rows: u32,
        part: Part,
        sink: &mut dyn GradientSink,
    ) -> Result<()> {
        self.prepare_hand_over(sink.buckets());
        let mut hand_over = self.hand_over.take().expect("made above");
        let head = [
            self.gather(gathered),
            &self.plan.forward,
            &self.plan.loss_train,
        ];
        let result = self.run_hand_over(&mut hand_over, head, rows, part, sink);
        if result.is_err() {
            // Leave no buffer mapped for the next step's read-back.
            self.ctx.wait("finishing a failed hand-over").ok();
            for staged in &mut hand_over.staged {
                if staged.mapped.swap(PENDING, Ordering::AcqRel) == MAPPED {
                    staged.staging.unmap();
                }
            }
        }
        self.hand_over = Some(hand_over);
        result
    }

    /// [`GpuEngine::hand_over_step`] with its staging buffers.
    fn run_hand_over(
        &self,
        hand_over: &mut HandOver,
        head: [&[Dispatch]; 3],
        rows: u32,
        part: Part,
        sink: &mut dyn GradientSink,
    ) -> Result<()> {
        let variant = usize::from(!part.first);
        let backward = [&self.plan.backward, &self.plan.backward_accumulate][variant];
        let total = self.layout.total;
        let mut done = 0;
        for (b, (bucket, staged)) in hand_over
            .buckets
            .buckets()
            .iter()
            .zip(&mut hand_over.staged)
            .enumerate()
        {
            let end = self.plan.backward_ends[bucket.layers.start][variant];
            let piece = &backward[done..end];
            done = end;
            if b == 0 {
                let [gather, forward, loss] = head;
                self.submit(&[gather, forward, loss, piece], rows);
            } else {
                self.submit(&[piece], rows);
            }
            let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
            let span = staged.span.end - staged.span.start;
            for k in 0..self.models as u64 {
                encoder.copy_buffer_to_buffer(
                    &self.buffers.grads,
                    (k * total + staged.span.start) * 4,
                    &staged.staging,
                    k * span * 4,
                    span * 4,
                );
            }
            staged.copied = Some(self.ctx.queue.submit([encoder.finish()]));
            staged.mapped.store(PENDING, Ordering::Release);
            let mapped = Arc::clone(&staged.mapped);
            staged
                .staging
                .map_async(wgpu::MapMode::Read, .., move |result| {
                    mapped.store(
                        if result.is_ok() { MAPPED } else { FAILED },
                        Ordering::Release,
                    );
                });
        }
        for (b, staged) in hand_over.staged.iter_mut().enumerate() {
            let context = || {
                format!(
                    "reading gradient bucket {b} of step {} back",
                    self.steps + 1
                )
            };
            self.ctx
                .device
                .poll(wgpu::PollType::Wait {
                    submission_index: staged.copied.take(),
                    timeout: None,
                })
                .map_err(|e| Error::Gpu {
                    context: context(),
                    message: e.to_string(),
                })?;
            self.ctx.check_errors("reading gradient buckets back")?;
            if staged.mapped.load(Ordering::Acquire) != MAPPED {
                return Err(Error::Gpu {
                    context: context(),
                    message: "the staging buffer could not be mapped".into(),
                });
            }
            let handed = {
                let view = staged
                    .staging
                    .get_mapped_range(..)
                    .map_err(|e| Error::Gpu {
                        context: context(),
                        message: e.to_string(),
                    })?;
                let values: &[f32] = bytemuck::cast_slice(&view);
                let span = staged.span.end - staged.span.start;
                let tensors = &hand_over.tensors;
                (0..self.models).try_for_each(|k| {
                    sink.ready(k, b, &|t| {
                        let (offset, len) = tensors[t].expect("a bucket holds trained tensors");
                        let at = (k as u64 * span + offset - staged.span.start) as usize;
                        &values[at..at + len as usize]
                    })
                })
            };
            staged.mapped.store(PENDING, Ordering::Release);
            staged.staging.unmap();
            handed?;
        }
        Ok(())
    }
}
