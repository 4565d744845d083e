//! NaN and infinite values in what is read: found as a file is read and reported where they are
//! (file, row, column), not later as a training run that diverges.

use ndarray::ArrayView2;

use crate::error::{Error, Result};

/// The first NaN or infinite value of `values`, row by row: its row, column and value.
pub fn first_nonfinite(values: ArrayView2<'_, f32>) -> Option<(usize, usize, f32)> {
    values
        .indexed_iter()
        .find(|(_, v)| !v.is_finite())
        .map(|((row, column), &v)| (row, column, v))
}

/// The error for `value`, not finite, at `row` and `column` of `name`, ending with `hint` (what
/// to do about it).
pub fn nonfinite_error(name: &str, (row, column, value): (usize, usize, f32), hint: &str) -> Error {
    Error::Data {
        source_name: name.to_string(),
        message: format!(
            "row {row}, column {column} (counting from 0): {value} is not finite; {hint}"
        ),
    }
}

/// Refuses `values`, read from `name`, when any is NaN or infinite, naming the first.
pub fn refuse_nonfinite(values: ArrayView2<'_, f32>, name: &str, hint: &str) -> Result<()> {
    first_nonfinite(values).map_or(Ok(()), |at| Err(nonfinite_error(name, at, hint)))
}

/// Whether each row of `values` holds only finite values.
pub fn finite_rows(values: ArrayView2<'_, f32>) -> Vec<bool> {
    values
        .rows()
        .into_iter()
        .map(|row| row.iter().all(|v| v.is_finite()))
        .collect()
}
