//! The single rule for comparing two engines' numbers: `|a − b| ≤ abs + rel·|b|`.

use crate::model::Parameters;

/// A relative and an absolute bound; a pair passes when `|a − b| ≤ abs + rel·|b|`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Relative bound, scaled by the reference value `|b|`.
    pub rel: f32,
    /// Absolute bound.
    pub abs: f32,
}

impl Default for Tolerance {
    /// rel 1e-4, abs 1e-5: the default for parameters after a few steps.
    fn default() -> Self {
        Self {
            rel: 1e-4,
            abs: 1e-5,
        }
    }
}

impl Tolerance {
    /// Whether `a` (the engine under test) matches `b` (the reference). NaN never matches,
    /// except that equal infinities do.
    pub fn allows(&self, a: f32, b: f32) -> bool {
        a == b || (a - b).abs() <= self.abs + self.rel * b.abs()
    }
}

/// The worst disagreement between two sets of parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Worst {
    /// Tensor name (`layers.1.weight`).
    pub tensor: String,
    /// Row-major index within the tensor.
    pub index: usize,
    /// Value in the engine under test.
    pub value: f32,
    /// Value in the reference.
    pub reference: f32,
    /// How far over the tolerance it is: `|a − b| / (abs + rel·|b|)`; ≤ 1 passes.
    pub ratio: f32,
}

/// Compares every entry of `tested` against `reference`, returning the entry that is worst
/// relative to `tolerance` (ratio ≤ 1 means everything passes). Shapes must already match.
pub fn worst_difference(
    tested: &Parameters,
    reference: &Parameters,
    tolerance: Tolerance,
) -> Worst {
    let mut worst = Worst {
        tensor: String::new(),
        index: 0,
        value: 0.0,
        reference: 0.0,
        ratio: 0.0,
    };
    for (a, b) in tested.named_tensors().iter().zip(reference.named_tensors()) {
        for (index, (&x, &y)) in a.values.iter().zip(&b.values).enumerate() {
            let ratio = if x == y {
                0.0
            } else {
                let r = (x - y).abs() / (tolerance.abs + tolerance.rel * y.abs());
                if r.is_nan() { f32::INFINITY } else { r }
            };
            if ratio > worst.ratio || worst.tensor.is_empty() {
                worst = Worst {
                    tensor: a.name.clone(),
                    index,
                    value: x,
                    reference: y,
                    ratio,
                };
            }
        }
    }
    worst
}
