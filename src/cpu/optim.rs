//! The optimizer update of one tensor on the CPU: each optimizer's element-wise
//! [`Rule::update`](crate::optim::Rule::update) over chunks in parallel.

use rayon::iter::Either;
use rayon::prelude::*;

use crate::optim::{Coefficients, MAX_STATE_SLOTS, Optimizer};

/// Elements one task updates: enough to outweigh handing the task to a thread, few enough
/// that a layer's tensor is shared among the cores.
const CHUNK: usize = 1 << 15;

/// Applies one update of `optimizer` to a tensor, with its `coefficients` of this step and
/// every gradient first multiplied by `clip` (the scale of clipping by global norm; 1 when
/// off). `state[k]` is the tensor's state slot `k` (empty when the optimizer does not use that
/// slot). Returns whether every gradient and updated value was finite.
///
/// The tensor is cut into chunks updated in parallel. The optimizer walks a chunk's slices
/// side by side, element by element, in loops the compiler vectorises; every element's update
/// is the same arithmetic in the same order whatever the chunking.
pub fn update(
    optimizer: &Optimizer,
    coefficients: &Coefficients,
    clip: f32,
    params: &mut [f32],
    grads: &[f32],
    state: &mut [Vec<f32>; MAX_STATE_SLOTS],
) -> bool {
    let rule = optimizer.rule();
    let chunks = params.len().div_ceil(CHUNK);
    // A slot the optimizer does not use gives every chunk an empty slice.
    let [s0, s1, s2] = state.each_mut().map(|slot| {
        if slot.is_empty() {
            Either::Left((0..chunks).into_par_iter().map(|_| &mut [][..]))
        } else {
            Either::Right(slot.par_chunks_mut(CHUNK))
        }
    });
    params
        .par_chunks_mut(CHUNK)
        .zip(grads.par_chunks(CHUNK))
        .zip(s0.zip(s1).zip(s2))
        .map(|((p, g), ((s0, s1), s2))| {
            rule.update(coefficients, clip, p, g, [s0, s1, s2]);
            all_finite(g) & all_finite(p)
        })
        .reduce(|| true, |a, b| a & b)
}

crate::simd::widest! {
    /// Whether every value is finite, in one pass with no early exit (so it vectorises, at the
    /// CPU's widest SIMD).
    fn all_finite(values: &[f32]) -> bool {
        values.iter().fold(true, |all, v| all & v.is_finite())
    }
}
