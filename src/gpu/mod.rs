//! The GPU engine: WGSL compute kernels driven through wgpu.

mod buffers;
mod context;
mod engine;
mod gemm;
mod kernels;
mod memory;
mod pack;
mod tuning;

pub use context::{AdapterRequest, GpuContext, check_fits, enumerate_adapters};
pub use engine::GpuEngine;
pub use gemm::Gemm;
pub use kernels::{Epilogue, MatmulTile, MatmulVariant};
pub use memory::{MemoryEstimate, mib};
pub use pack::{GpuPack, KernelKind};
pub use tuning::Tuning;
