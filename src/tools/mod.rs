//! Library functions behind the command-line tools; they return plain structs and leave
//! formatting to the caller.

mod bench;
mod bench_engine;
mod bench_packs;
mod bench_residency;
mod check;
mod devices;
mod lr_find;
mod tune;

pub use bench::{
    BatchRow, BatchSweep, GemmRow, GpuGemmFigures, RunInfo, bench_batch_sizes, bench_gemm,
};
pub use bench_engine::BenchEngine;
pub use bench_packs::{PackRow, bench_packs};
pub use bench_residency::ResidencyThroughput;
pub use check::{CheckReport, CheckStep, Difference, check};
pub use devices::{DeviceReport, list_devices};
pub use lr_find::{
    LrFindConfig, LrFindReport, LrPoint, SMOOTHING, STOP_FACTOR, lr_find, steepest, suggest,
};
pub use tune::retune;
