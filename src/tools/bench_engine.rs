//! The engine a benchmark measures.

use crate::gpu::GpuContext;

/// Which engine a sweep runs.
#[derive(Debug, Clone)]
pub enum BenchEngine {
    /// The GPU engine on this device.
    Gpu(Box<GpuContext>),
    /// The CPU reference.
    Cpu,
}
