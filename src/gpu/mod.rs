//! The GPU engine: WGSL compute kernels driven through wgpu.

mod adapters;
mod buffers;
mod context;
mod engine;
mod gemm;
mod kernels;
mod memory;
mod pack;
mod progress;
#[cfg(test)]
mod testing;
mod tuning;

pub use adapters::{AdapterChoice, Want, choose_adapter, enumerate_adapters, is_hardware};
pub use context::{AdapterRequest, GpuContext, Placement, check_fits};
pub use engine::GpuEngine;
pub use gemm::Gemm;
pub use kernels::{Epilogue, MatmulTile, MatmulVariant};
pub use memory::{MemoryEstimate, mib};
pub use pack::{GpuPack, KernelKind};
pub use progress::{Cancel, OnProgress, Progress};
pub use tuning::Tuning;
