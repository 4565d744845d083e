//! The GPU engine: WGSL compute kernels driven through wgpu.

mod adapters;
mod buffers;
mod context;
mod device;
mod engine;
mod gemm;
mod memory;
mod ops;
mod profile;
mod progress;
#[cfg(test)]
mod testing;
mod units;

pub use adapters::{
    AdapterChoice, AdapterRequest, Want, choose_adapter, enumerate_adapters, is_hardware,
    rank_adapter,
};
pub use context::{GpuContext, Placement};
pub use device::{Device, check_fits};
pub use engine::GpuEngine;
pub use gemm::Gemm;
pub use memory::MemoryEstimate;
pub use ops::dispatch::KernelKind;
pub use ops::matmul::tuning::{TunedShape, Tuning};
pub use ops::matmul::{Epilogue, MatmulTile, MatmulVariant};
pub use progress::{Cancel, OnProgress, Progress};
pub use units::mib;
