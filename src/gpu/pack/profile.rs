//! Timing a pack's steps on the device: launches per step, timestamp queries around the step
//! or around every launch, read back on request.

use super::*;

impl GpuPack {
    /// Kernel launches in one training step (with clipping when it is on; without the gather of
    /// resident data).
    pub fn dispatches_per_step(&self) -> usize {
        self.forward.len()
            + self.loss_train.len()
            + self.backward.len()
            + match (self.clip_norm, self.clip_chunked.len()) {
                (None, _) => 0,
                (Some(_), 0) => 1,
                (Some(_), chunked) => chunked,
            }
            + self.update.len()
    }

    /// Turns on GPU timing of every submitted pass with timestamp queries; `false` when the
    /// device cannot (time on the host instead).
    pub fn enable_gpu_timing(&mut self) -> bool {
        if !self.ctx.supports_timestamps() {
            return false;
        }
        let queries = self.ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("step timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let resolved = self.ctx.buffer(&wgpu::BufferDescriptor {
            label: Some("resolved timestamps"),
            size: 16,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        self.timing = Some(Timing { queries, resolved });
        true
    }

    /// Records the next step (by [`Pack::step`] or [`Pack::step_resident`]) with every kernel
    /// launch in a pass of its own between two timestamps, for [`GpuPack::take_profile`];
    /// `false` when the device has no timestamp queries. The step itself is a real one; only
    /// its recording differs.
    pub fn profile_next_step(&mut self) -> bool {
        if !self.ctx.supports_timestamps() {
            return false;
        }
        let queries = self.ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("profile timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: PROFILE_CAPACITY,
        });
        let resolved = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("resolved profile timestamps"),
            size: 8 * u64::from(PROFILE_CAPACITY),
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        self.profile = Some(Profile {
            timing: Timing { queries, resolved },
            launches: Default::default(),
        });
        true
    }

    /// Each launch of the profiled step, in launch order, with its GPU time in seconds (reads
    /// back); `None` when no step was profiled. Profiling stops.
    pub fn take_profile(&mut self) -> Result<Option<Vec<(KernelKind, f64)>>> {
        let Some(profile) = self.profile.take() else {
            return Ok(None);
        };
        let launches = profile.launches.into_inner();
        if launches.is_empty() {
            return Ok(None);
        }
        let raw = self.ctx.read_back_bytes(
            &profile.timing.resolved,
            0,
            16 * launches.len() as u64,
            "the profile's timestamps",
        )?;
        let stamps: Vec<u64> = bytemuck::pod_collect_to_vec(&raw);
        let period = f64::from(self.ctx.queue.get_timestamp_period());
        Ok(Some(
            launches
                .into_iter()
                .zip(stamps.chunks_exact(2))
                .map(|(kind, pair)| (kind, pair[1].saturating_sub(pair[0]) as f64 * period * 1e-9))
                .collect(),
        ))
    }

    /// GPU time of the last submitted pass, in seconds, from its timestamps (reads back).
    pub fn last_gpu_seconds(&mut self) -> Result<Option<f64>> {
        let Some(t) = &self.timing else {
            return Ok(None);
        };
        let raw = self
            .ctx
            .read_back_bytes(&t.resolved, 0, 16, "the step's timestamps")?;
        let stamps: [u64; 2] = bytemuck::pod_read_unaligned(&raw[..16]);
        let period = f64::from(self.ctx.queue.get_timestamp_period());
        Ok(Some(
            stamps[1].saturating_sub(stamps[0]) as f64 * period * 1e-9,
        ))
    }
}
