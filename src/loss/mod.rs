//! Losses and the targets they take, one file each beside its WGSL. Every loss is a mean over
//! the batch: with `ŷ` the model output (`[B, C]`), `L = (1/N) Σ_rows ℓ_row` where `N` is the
//! loss's normaliser (`B` or `B·C`); each file writes its `ℓ_row` and `∂ℓ_row/∂ŷ` as equations.
//!
//! Each loss's file holds its name, its normaliser, one row's loss and gradient and its
//! accuracy rule for the CPU engine, and its WGSL beside it (`NAME_row(b, base)`, which writes
//! the row's gradient and returns its loss, and `NAME_correct(b, base)`, the same arithmetic).
//! The GPU loss kernel (`src/gpu/ops/loss.rs`) is compiled with `wgsl()`: every loss's WGSL
//! and `loss_row` / `loss_correct` dispatching on the `LOSS` override.
//!
//! Adding a loss touches its own two files (`src/loss/NAME.rs`, `NAME.wgsl`) and `kind.rs`: its
//! variant and its arms in the dispatch (and its `mod` here).

mod batch;
mod bce_logits;
mod cross_entropy;
mod kind;
mod mse;
mod row;
mod targets;

pub use batch::Batch;
pub use kind::Loss;
pub(crate) use kind::wgsl;
pub use row::RowTarget;
pub use targets::{Targets, TargetsView};
