//! The optimizer updates, one element at a time, exactly as the equations in [`crate::optim`].

use crate::optim::{
    AdadeltaCoefficients, AdagradCoefficients, AdamCoefficients, Coefficients, RmsPropCoefficients,
    SgdCoefficients,
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
pub fn update<'a>(
    coefficients: &Coefficients,
    clip: f32,
    params: impl Iterator<Item = &'a mut f32>,
    grads: impl Iterator<Item = &'a f32>,
    state: &mut [Vec<f32>],
) -> bool {
    let mut finite = true;
    for (i, (p, &raw)) in params.zip(grads).enumerate() {
        let g = raw * clip;
        match coefficients {
            Coefficients::Sgd(c) => sgd(c, p, g, i, state),
            Coefficients::Adam(c) => adam(c, p, g, i, state),
            Coefficients::RmsProp(c) => rmsprop(c, p, g, i, state),
            Coefficients::Adagrad(c) => adagrad(c, p, g, i, state),
            Coefficients::Adadelta(c) => adadelta(c, p, g, i, state),
        }
        finite &= raw.is_finite() && p.is_finite();
    }
    finite
}

fn sgd(c: &SgdCoefficients, p: &mut f32, mut g: f32, i: usize, state: &mut [Vec<f32>]) {
    if c.weight_decay != 0.0 {
        g += c.weight_decay * *p;
    }
    if c.use_momentum != 0 {
        let b = &mut state[0][i];
        *b = if c.first_step != 0 {
            g
        } else {
            c.momentum * *b + c.one_minus_dampening * g
        };
        g = if c.nesterov != 0 {
            g + c.momentum * *b
        } else {
            *b
        };
    }
    *p -= c.lr * g;
}

fn adam(c: &AdamCoefficients, p: &mut f32, mut g: f32, i: usize, state: &mut [Vec<f32>]) {
    *p *= c.decay_factor;
    if c.weight_decay != 0.0 {
        g += c.weight_decay * *p;
    }
    let m = lerp(state[0][i], g, c.one_minus_beta1);
    let v = c.beta2 * state[1][i] + c.one_minus_beta2 * g * g;
    state[0][i] = m;
    state[1][i] = v;
    let second = if c.amsgrad != 0 {
        let vmax = state[2][i].max(v);
        state[2][i] = vmax;
        vmax
    } else {
        v
    };
    let denom = second.sqrt() / c.bias_correction2_sqrt + c.eps;
    *p -= c.step_size * m / denom;
}

fn rmsprop(c: &RmsPropCoefficients, p: &mut f32, mut g: f32, i: usize, state: &mut [Vec<f32>]) {
    if c.weight_decay != 0.0 {
        g += c.weight_decay * *p;
    }
    let s = c.alpha * state[0][i] + c.one_minus_alpha * g * g;
    state[0][i] = s;
    let denom = if c.centered != 0 {
        let a = lerp(state[2][i], g, c.one_minus_alpha);
        state[2][i] = a;
        (s - a * a).sqrt() + c.eps
    } else {
        s.sqrt() + c.eps
    };
    if c.use_momentum != 0 {
        let b = c.momentum * state[1][i] + g / denom;
        state[1][i] = b;
        *p -= c.lr * b;
    } else {
        *p -= c.lr * g / denom;
    }
}

fn adagrad(c: &AdagradCoefficients, p: &mut f32, mut g: f32, i: usize, state: &mut [Vec<f32>]) {
    if c.weight_decay != 0.0 {
        g += c.weight_decay * *p;
    }
    let s = state[0][i] + g * g;
    state[0][i] = s;
    *p -= c.clr * g / (s.sqrt() + c.eps);
}

fn adadelta(c: &AdadeltaCoefficients, p: &mut f32, mut g: f32, i: usize, state: &mut [Vec<f32>]) {
    if c.weight_decay != 0.0 {
        g += c.weight_decay * *p;
    }
    let v = c.rho * state[0][i] + c.one_minus_rho * g * g;
    state[0][i] = v;
    let delta = (state[1][i] + c.eps).sqrt() / (v + c.eps).sqrt() * g;
    state[1][i] = c.rho * state[1][i] + c.one_minus_rho * delta * delta;
    *p -= c.lr * delta;
}
