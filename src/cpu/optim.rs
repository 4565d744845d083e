//! The optimizer updates, one element at a time, exactly as the equations in [`crate::optim`].

use itertools::izip;
use rayon::iter::Either;
use rayon::prelude::*;

use crate::optim::{
    AdadeltaCoefficients, AdagradCoefficients, AdamCoefficients, Coefficients, MAX_STATE_SLOTS,
    RmsPropCoefficients, SgdCoefficients,
};

/// PyTorch's `lerp(a, b, w)`: `a + w(b − a)` for `|w| < ½`, else `b − (b − a)(1 − w)`.
pub fn lerp(a: f32, b: f32, w: f32) -> f32 {
    if w.abs() < 0.5 {
        a + w * (b - a)
    } else {
        b - (b - a) * (1.0 - w)
    }
}

/// Elements one task updates: enough to outweigh handing the task to a thread, few enough
/// that a layer's tensor is shared among the cores.
const CHUNK: usize = 1 << 15;

/// Applies one update to a tensor, with every gradient first multiplied by `clip` (the scale of
/// clipping by global norm; 1 when off). `state[k]` is the tensor's state slot `k` (empty when
/// the optimizer does not use that slot). Returns whether every gradient and updated value was
/// finite.
///
/// The tensor is cut into chunks updated in parallel. Each optimizer walks a chunk's slices
/// side by side, element by element, in loops the compiler vectorises; every element's update
/// is the same arithmetic in the same order whatever the chunking.
pub fn update(
    coefficients: &Coefficients,
    clip: f32,
    params: &mut [f32],
    grads: &[f32],
    state: &mut [Vec<f32>; MAX_STATE_SLOTS],
) -> bool {
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
            match coefficients {
                Coefficients::Sgd(c) => sgd(c, clip, p, g, s0),
                Coefficients::Adam(c) => adam(c, clip, p, g, [s0, s1, s2]),
                Coefficients::RmsProp(c) => rmsprop(c, clip, p, g, [s0, s1, s2]),
                Coefficients::Adagrad(c) => adagrad(c, clip, p, g, s0),
                Coefficients::Adadelta(c) => adadelta(c, clip, p, g, [s0, s1]),
            }
            all_finite(g) & all_finite(p)
        })
        .reduce(|| true, |a, b| a & b)
}

/// The gradient an optimizer steps with: `g·clip`, plus `λ·p` (PyTorch's weight decay, an L2
/// penalty; skipped when `λ = 0`, as torch skips it).
fn decayed_gradient(g: f32, clip: f32, p: f32, weight_decay: f32) -> f32 {
    let g = g * clip;
    if weight_decay != 0.0 {
        g + weight_decay * p
    } else {
        g
    }
}

/// Whether every value is finite, in one pass with no early exit (so it vectorises).
fn all_finite(values: &[f32]) -> bool {
    values.iter().fold(true, |all, v| all & v.is_finite())
}

type Tensor<'a> = &'a mut [f32];
type Grads<'a> = &'a [f32];

fn sgd(c: &SgdCoefficients, clip: f32, p: Tensor<'_>, g: Grads<'_>, buffer: Tensor<'_>) {
    if c.use_momentum == 0 {
        for (p, &g) in izip!(p, g) {
            *p -= c.lr * decayed_gradient(g, clip, *p, c.weight_decay);
        }
        return;
    }
    for (p, &g, b) in izip!(p, g, buffer) {
        let g = decayed_gradient(g, clip, *p, c.weight_decay);
        *b = if c.first_step != 0 {
            g
        } else {
            c.momentum * *b + c.one_minus_dampening * g
        };
        let step = if c.nesterov != 0 {
            g + c.momentum * *b
        } else {
            *b
        };
        *p -= c.lr * step;
    }
}

fn adam(c: &AdamCoefficients, clip: f32, p: Tensor<'_>, g: Grads<'_>, state: [Tensor<'_>; 3]) {
    let [exp_avg, exp_avg_sq, max_exp_avg_sq] = state;
    // The moments after this gradient; returns the decayed parameter's new second moment.
    let moments = |p: &mut f32, g: f32, m: &mut f32, v: &mut f32| {
        *p *= c.decay_factor;
        let g = decayed_gradient(g, clip, *p, c.weight_decay);
        *m = lerp(*m, g, c.one_minus_beta1);
        *v = c.beta2 * *v + c.one_minus_beta2 * g * g;
    };
    let apply = |p: &mut f32, m: f32, second: f32| {
        let denom = second.sqrt() / c.bias_correction2_sqrt + c.eps;
        *p -= c.step_size * m / denom;
    };
    if c.amsgrad != 0 {
        for (p, &g, m, v, vmax) in izip!(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq) {
            moments(p, g, m, v);
            *vmax = vmax.max(*v);
            apply(p, *m, *vmax);
        }
    } else {
        for (p, &g, m, v) in izip!(p, g, exp_avg, exp_avg_sq) {
            moments(p, g, m, v);
            apply(p, *m, *v);
        }
    }
}

fn rmsprop(
    c: &RmsPropCoefficients,
    clip: f32,
    p: Tensor<'_>,
    g: Grads<'_>,
    state: [Tensor<'_>; 3],
) {
    let [square_avg, momentum_buffer, grad_avg] = state;
    let apply = |p: &mut f32, g: f32, denom: f32, b: Option<&mut f32>| match b {
        Some(b) => {
            *b = c.momentum * *b + g / denom;
            *p -= c.lr * *b;
        }
        None => *p -= c.lr * g / denom,
    };
    match (c.centered != 0, c.use_momentum != 0) {
        (false, false) => {
            for (p, &g, s) in izip!(p, g, square_avg) {
                let g = decayed_gradient(g, clip, *p, c.weight_decay);
                *s = c.alpha * *s + c.one_minus_alpha * g * g;
                apply(p, g, s.sqrt() + c.eps, None);
            }
        }
        (false, true) => {
            for (p, &g, s, b) in izip!(p, g, square_avg, momentum_buffer) {
                let g = decayed_gradient(g, clip, *p, c.weight_decay);
                *s = c.alpha * *s + c.one_minus_alpha * g * g;
                apply(p, g, s.sqrt() + c.eps, Some(b));
            }
        }
        (true, momentum) => {
            let centered = |p: &mut f32, g: f32, s: &mut f32, a: &mut f32, b: Option<&mut f32>| {
                let g = decayed_gradient(g, clip, *p, c.weight_decay);
                *s = c.alpha * *s + c.one_minus_alpha * g * g;
                *a = lerp(*a, g, c.one_minus_alpha);
                apply(p, g, (*s - *a * *a).sqrt() + c.eps, b);
            };
            if momentum {
                for (p, &g, s, a, b) in izip!(p, g, square_avg, grad_avg, momentum_buffer) {
                    centered(p, g, s, a, Some(b));
                }
            } else {
                for (p, &g, s, a) in izip!(p, g, square_avg, grad_avg) {
                    centered(p, g, s, a, None);
                }
            }
        }
    }
}

fn adagrad(c: &AdagradCoefficients, clip: f32, p: Tensor<'_>, g: Grads<'_>, sum: Tensor<'_>) {
    for (p, &g, s) in izip!(p, g, sum) {
        let g = decayed_gradient(g, clip, *p, c.weight_decay);
        *s += g * g;
        *p -= c.clr * g / (s.sqrt() + c.eps);
    }
}

fn adadelta(
    c: &AdadeltaCoefficients,
    clip: f32,
    p: Tensor<'_>,
    g: Grads<'_>,
    state: [Tensor<'_>; 2],
) {
    let [square_avg, acc_delta] = state;
    for (p, &g, v, u) in izip!(p, g, square_avg, acc_delta) {
        let g = decayed_gradient(g, clip, *p, c.weight_decay);
        *v = c.rho * *v + c.one_minus_rho * g * g;
        let delta = (*u + c.eps).sqrt() / (*v + c.eps).sqrt() * g;
        *u = c.rho * *u + c.one_minus_rho * delta * delta;
        *p -= c.lr * delta;
    }
}
