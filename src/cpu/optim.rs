//! The optimizer updates, one element at a time, exactly as the equations in [`crate::optim`].

use ndarray::{ArrayView1, ArrayViewMut1, Zip};

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

/// Applies one update to a tensor, with every gradient first multiplied by `clip` (the scale of
/// clipping by global norm; 1 when off). `state[k]` is the tensor's state slot `k` (empty when
/// the optimizer does not use that slot). Returns whether every gradient and updated value was
/// finite.
///
/// Each optimizer walks its tensors with [`Zip`], element by element with no indexing, so that
/// the compiler can vectorise the loop.
pub fn update(
    coefficients: &Coefficients,
    clip: f32,
    params: &mut [f32],
    grads: &[f32],
    state: &mut [Vec<f32>; MAX_STATE_SLOTS],
) -> bool {
    {
        let [s0, s1, s2] = state
            .each_mut()
            .map(|s| ArrayViewMut1::from(s.as_mut_slice()));
        let (p, g) = (ArrayViewMut1::from(&mut *params), ArrayView1::from(grads));
        match coefficients {
            Coefficients::Sgd(c) => sgd(c, clip, p, g, s0),
            Coefficients::Adam(c) => adam(c, clip, p, g, [s0, s1, s2]),
            Coefficients::RmsProp(c) => rmsprop(c, clip, p, g, [s0, s1, s2]),
            Coefficients::Adagrad(c) => adagrad(c, clip, p, g, s0),
            Coefficients::Adadelta(c) => adadelta(c, clip, p, g, [s0, s1]),
        }
    }
    let finite = |values: &[f32]| values.iter().fold(true, |all, v| all & v.is_finite());
    finite(grads) & finite(params)
}

type Tensor<'a> = ArrayViewMut1<'a, f32>;
type Grads<'a> = ArrayView1<'a, f32>;

fn sgd(c: &SgdCoefficients, clip: f32, p: Tensor<'_>, g: Grads<'_>, buffer: Tensor<'_>) {
    let decayed = |p: f32, g: f32| {
        let g = g * clip;
        if c.weight_decay != 0.0 {
            g + c.weight_decay * p
        } else {
            g
        }
    };
    if c.use_momentum == 0 {
        Zip::from(p)
            .and(g)
            .for_each(|p, &g| *p -= c.lr * decayed(*p, g));
        return;
    }
    Zip::from(p).and(g).and(buffer).for_each(|p, &g, b| {
        let g = decayed(*p, g);
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
    });
}

fn adam(c: &AdamCoefficients, clip: f32, p: Tensor<'_>, g: Grads<'_>, state: [Tensor<'_>; 3]) {
    let [exp_avg, exp_avg_sq, max_exp_avg_sq] = state;
    // The moments after this gradient; returns the decayed parameter's new second moment.
    let moments = |p: &mut f32, g: f32, m: &mut f32, v: &mut f32| {
        *p *= c.decay_factor;
        let mut g = g * clip;
        if c.weight_decay != 0.0 {
            g += c.weight_decay * *p;
        }
        *m = lerp(*m, g, c.one_minus_beta1);
        *v = c.beta2 * *v + c.one_minus_beta2 * g * g;
    };
    let apply = |p: &mut f32, m: f32, second: f32| {
        let denom = second.sqrt() / c.bias_correction2_sqrt + c.eps;
        *p -= c.step_size * m / denom;
    };
    let both = Zip::from(p).and(g).and(exp_avg).and(exp_avg_sq);
    if c.amsgrad != 0 {
        both.and(max_exp_avg_sq).for_each(|p, &g, m, v, vmax| {
            moments(p, g, m, v);
            *vmax = vmax.max(*v);
            apply(p, *m, *vmax);
        });
    } else {
        both.for_each(|p, &g, m, v| {
            moments(p, g, m, v);
            apply(p, *m, *v);
        });
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
    let decayed = |p: f32, g: f32| {
        let g = g * clip;
        if c.weight_decay != 0.0 {
            g + c.weight_decay * p
        } else {
            g
        }
    };
    let apply = |p: &mut f32, g: f32, denom: f32, b: Option<&mut f32>| match b {
        Some(b) => {
            *b = c.momentum * *b + g / denom;
            *p -= c.lr * *b;
        }
        None => *p -= c.lr * g / denom,
    };
    let base = Zip::from(p).and(g).and(square_avg);
    match (c.centered != 0, c.use_momentum != 0) {
        (false, false) => base.for_each(|p, &g, s| {
            let g = decayed(*p, g);
            *s = c.alpha * *s + c.one_minus_alpha * g * g;
            apply(p, g, s.sqrt() + c.eps, None);
        }),
        (false, true) => base.and(momentum_buffer).for_each(|p, &g, s, b| {
            let g = decayed(*p, g);
            *s = c.alpha * *s + c.one_minus_alpha * g * g;
            apply(p, g, s.sqrt() + c.eps, Some(b));
        }),
        (true, momentum) => {
            let centered = |p: &mut f32, g: f32, s: &mut f32, a: &mut f32, b: Option<&mut f32>| {
                let g = decayed(*p, g);
                *s = c.alpha * *s + c.one_minus_alpha * g * g;
                *a = lerp(*a, g, c.one_minus_alpha);
                apply(p, g, (*s - *a * *a).sqrt() + c.eps, b);
            };
            let base = base.and(grad_avg);
            if momentum {
                base.and(momentum_buffer)
                    .for_each(|p, &g, s, a, b| centered(p, g, s, a, Some(b)));
            } else {
                base.for_each(|p, &g, s, a| centered(p, g, s, a, None));
            }
        }
    }
}

fn adagrad(c: &AdagradCoefficients, clip: f32, p: Tensor<'_>, g: Grads<'_>, sum: Tensor<'_>) {
    Zip::from(p).and(g).and(sum).for_each(|p, &g, s| {
        let mut g = g * clip;
        if c.weight_decay != 0.0 {
            g += c.weight_decay * *p;
        }
        *s += g * g;
        *p -= c.clr * g / (s.sqrt() + c.eps);
    });
}

fn adadelta(
    c: &AdadeltaCoefficients,
    clip: f32,
    p: Tensor<'_>,
    g: Grads<'_>,
    state: [Tensor<'_>; 2],
) {
    let [square_avg, acc_delta] = state;
    Zip::from(p)
        .and(g)
        .and(square_avg)
        .and(acc_delta)
        .for_each(|p, &g, v, u| {
            let mut g = g * clip;
            if c.weight_decay != 0.0 {
                g += c.weight_decay * *p;
            }
            *v = c.rho * *v + c.one_minus_rho * g * g;
            let delta = (*u + c.eps).sqrt() / (*v + c.eps).sqrt() * g;
            *u = c.rho * *u + c.one_minus_rho * delta * delta;
            *p -= c.lr * delta;
        });
}
