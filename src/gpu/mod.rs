//! The GPU engine: WGSL compute kernels driven through wgpu.

mod adapters;
mod buffers;
mod context;
mod device;
mod engine;
mod gemm;
mod kernels;
mod memory;
mod pack;
mod progress;
mod staged;
#[cfg(test)]
mod testing;
mod tuning;
mod units;

pub use adapters::{
    AdapterChoice, AdapterRequest, Want, choose_adapter, enumerate_adapters, is_hardware,
};
pub use context::{GpuContext, Placement};
pub use device::{Device, check_fits};
pub use engine::GpuEngine;
pub use gemm::Gemm;
pub use kernels::{Epilogue, MatmulTile, MatmulVariant};
pub use memory::MemoryEstimate;
pub use pack::{GpuPack, KernelKind};
pub use progress::{Cancel, OnProgress, Progress};
pub use tuning::Tuning;
pub use units::mib;
