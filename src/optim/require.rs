//! The check every hyperparameter passes: finite, valid for its optimizer, and within f32's range.

use crate::error::{Error, Result};

/// Returns an [`Error::InvalidHyperparameter`] unless `valid` holds and `value` is finite and
/// within f32's range (every hyperparameter reaches the engines as an f32).
pub(crate) fn require(
    optimizer: &'static str,
    name: &'static str,
    value: f64,
    valid: bool,
    reason: &'static str,
) -> Result<()> {
    if !value.is_finite() {
        return Err(Error::InvalidHyperparameter {
            optimizer,
            name,
            value,
            reason: "must be a finite number",
        });
    }
    if !valid {
        return Err(Error::InvalidHyperparameter {
            optimizer,
            name,
            value,
            reason,
        });
    }
    if value.abs() > f64::from(f32::MAX) {
        return Err(Error::InvalidHyperparameter {
            optimizer,
            name,
            value,
            reason: "is too large: the engines compute in f32, whose largest value is 3.4e38",
        });
    }
    if value != 0.0 && value as f32 == 0.0 {
        return Err(Error::InvalidHyperparameter {
            optimizer,
            name,
            value,
            reason: "is too small: the engines compute in f32, where it would be 0 (the \
                     smallest is about 1.4e-45)",
        });
    }
    Ok(())
}
