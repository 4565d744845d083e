//! Library functions behind the command-line tools; they return plain structs and leave
//! formatting to the caller.

mod bench;
mod bench_packs;
mod check;
mod devices;

pub use bench::{
    BatchRow, BatchSweep, BenchEngine, GemmRow, RunInfo, bench_batch_sizes, bench_gemm,
};
pub use bench_packs::{PackRow, bench_packs};
pub use check::{CheckReport, CheckStep, Difference, check};
pub use devices::{DeviceReport, list_devices};
