//! The command line's pieces: flags, shared helpers and one module per command.

pub mod args;
pub mod bench;
pub mod check;
pub mod common;
pub mod devices;
pub mod eval;
pub mod eval_report;
pub mod lr_find;
pub mod metrics_log;
pub mod optimizer_flags;
pub mod output;
pub mod outputs;
pub mod prepare;
pub mod ranks;
pub mod resume_flags;
pub mod runtime_dir;
pub mod signals;
pub mod sweep;
pub mod sweep_ranks;
pub mod tensorboard;
pub mod train;
pub mod tune;
