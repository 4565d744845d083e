//! Timestamp queries around passes: two around each submitted pass of a step, or two around
//! every launch of one step recorded a pass per launch, and the seconds between each pair.

use std::cell::RefCell;

use super::device::Device;
use super::ops::dispatch::KernelKind;
use crate::error::Result;

/// The most launches one profiled step can time: every kernel of a step, with room to spare.
pub(crate) const PROFILE_CAPACITY: u32 = 4096;

/// Pairs of timestamps and where they are resolved.
pub(crate) struct Timing {
    pub queries: wgpu::QuerySet,
    pub resolved: wgpu::Buffer,
}

impl Timing {
    /// Two timestamps, around one pass.
    pub fn around_pass(device: &Device) -> Self {
        Self {
            queries: device.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("step timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            }),
            resolved: device.buffer(&wgpu::BufferDescriptor {
                label: Some("resolved timestamps"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
        }
    }

    /// Two timestamps around each of up to [`PROFILE_CAPACITY`] / 2 passes.
    pub fn around_launches(device: &Device) -> Self {
        Self {
            queries: device.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: PROFILE_CAPACITY,
            }),
            resolved: device.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("resolved profile timestamps"),
                size: 8 * u64::from(PROFILE_CAPACITY),
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
        }
    }

    /// The seconds between the timestamps of each of the first `pairs` pairs,
    /// `(end − start) · period · 10⁻⁹` (reads back).
    pub fn seconds(&self, device: &Device, pairs: usize, what: &str) -> Result<Vec<f64>> {
        let raw = device.read_back_bytes(&self.resolved, 0, 16 * pairs as u64, what)?;
        let stamps: Vec<u64> = bytemuck::pod_collect_to_vec(&raw);
        let period = f64::from(device.queue.get_timestamp_period());
        Ok(stamps
            .chunks_exact(2)
            .map(|pair| pair[1].saturating_sub(pair[0]) as f64 * period * 1e-9)
            .collect())
    }
}

/// Timestamps around every launch of one step, and the kinds of the launches recorded.
pub(crate) struct Profile {
    pub timing: Timing,
    pub launches: RefCell<Vec<KernelKind>>,
}

/// A pack's timestamp queries, each when turned on.
#[derive(Default)]
pub(crate) struct Profiling {
    /// Around each submitted pass.
    pub timing: Option<Timing>,
    /// Around every launch of the next step.
    pub profile: Option<Profile>,
}
