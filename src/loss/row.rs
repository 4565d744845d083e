//! One row's target, as a loss reads it.

use ndarray::ArrayView1;

/// One row's target: a class index, or a row of values as wide as the output.
#[derive(Debug, Clone, Copy)]
pub enum RowTarget<'a> {
    /// The class (cross-entropy only): a one-hot row.
    Class(usize),
    /// The values.
    Dense(ArrayView1<'a, f32>),
}

impl RowTarget<'_> {
    /// The target of output `c`.
    pub fn at(&self, c: usize) -> f32 {
        match self {
            RowTarget::Class(class) => f32::from(u8::from(*class == c)),
            RowTarget::Dense(y) => y[c],
        }
    }
}
