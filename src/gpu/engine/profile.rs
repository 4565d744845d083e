//! Timing a pack's steps on the device: launches per step, timestamp queries around the step
//! or around every launch, read back on request.

use super::GpuEngine;
use crate::error::Result;
use crate::gpu::ops::dispatch::KernelKind;
use crate::gpu::profile::{Profile, Timing};

impl GpuEngine {
    /// Kernel launches in one training step (with clipping when it is on; without the gather of
    /// resident data).
    pub fn dispatches_per_step(&self) -> usize {
        let plan = &self.plan;
        plan.forward.len()
            + plan.loss_train.len()
            + plan.backward.len()
            + self.clip_dispatches().len()
            + plan.update.len()
    }

    /// Turns on GPU timing of every submitted pass with timestamp queries; `false` when the
    /// device cannot (time on the host instead).
    pub fn enable_gpu_timing(&mut self) -> bool {
        if !self.ctx.supports_timestamps() {
            return false;
        }
        self.profiling.timing = Some(Timing::around_pass(&self.ctx));
        true
    }

    /// Records the next step (by [`Engine::step`](crate::engine::Engine::step) or
    /// [`Engine::step_resident`](crate::engine::Engine::step_resident)) with every kernel launch in a
    /// pass of its own between two timestamps, for [`GpuEngine::take_profile`];
    /// `false` when the device has no timestamp queries. The step itself is a real one; only
    /// its recording differs.
    pub fn profile_next_step(&mut self) -> bool {
        if !self.ctx.supports_timestamps() {
            return false;
        }
        self.profiling.profile = Some(Profile {
            timing: Timing::around_launches(&self.ctx),
            launches: Default::default(),
        });
        true
    }

    /// Each launch of the profiled step, in launch order, with its GPU time in seconds (reads
    /// back); `None` when no step was profiled. Profiling stops.
    pub fn take_profile(&mut self) -> Result<Option<Vec<(KernelKind, f64)>>> {
        let Some(profile) = self.profiling.profile.take() else {
            return Ok(None);
        };
        let launches = profile.launches.into_inner();
        if launches.is_empty() {
            return Ok(None);
        }
        let seconds =
            profile
                .timing
                .seconds(&self.ctx, launches.len(), "the profile's timestamps")?;
        Ok(Some(launches.into_iter().zip(seconds).collect()))
    }

    /// GPU time of the last submitted pass, in seconds, from its timestamps (reads back).
    pub fn last_gpu_seconds(&mut self) -> Result<Option<f64>> {
        let Some(t) = &self.profiling.timing else {
            return Ok(None);
        };
        let seconds = t.seconds(&self.ctx, 1, "the step's timestamps")?;
        Ok(seconds.first().copied())
    }
}
