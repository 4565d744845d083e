//! `downhill tune`: time afresh every matrix product a model trains with, at a batch size and a
//! number of models side by side, and report what each timing found.

use crate::engine::{Member, PackSetup, Setup};
use crate::error::Result;
use crate::gpu::{GpuContext, GpuEngine, TunedShape};
use crate::model::Parameters;

/// Times every shape class of the products that training `setup` runs (forward, weight and
/// input gradients, at batches of up to `max_batch` rows, for `models` copies of it side by side
/// as a sweep packs them), whatever `ctx`'s cache holds, and keeps each fastest tile in place of
/// the cached one (under autotuning: a context with fixed or pinned tiles times nothing). Returns
/// what each timing found, in the order the engine meets its products.
pub fn retune(
    ctx: &GpuContext,
    setup: &Setup,
    start: &Parameters,
    models: usize,
    max_batch: usize,
) -> Result<Vec<TunedShape>> {
    let ctx = ctx.retuning();
    let already = ctx.tuned_shapes().len();
    let pack = PackSetup {
        model: setup.model.clone(),
        loss: setup.loss,
        members: (0..models)
            .map(|_| Member {
                optimizer: setup.optimizer,
                parameters: start.clone(),
            })
            .collect(),
    };
    GpuEngine::pack(&ctx, pack, max_batch)?;
    Ok(ctx.tuned_shapes().split_off(already))
}
