//! Whether targets are classes or values. A single target column whose values are all small
//! non-negative integers, few of them distinct for the rows, is taken as class labels (as an
//! integer `.npy` file already is); anything else is regression. The user can say which.

use ndarray::Array2;

use crate::error::{Error, Result};
use crate::loss::Targets;

/// The largest class label taken as a class without being asked: a column of integers up to
/// this is labels when few are distinct; larger integers are counts or amounts.
pub const MAX_INFERRED_CLASS: u32 = 1000;

/// What the targets are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Decided from the values: see [`look_like_classes`].
    Auto,
    /// Class labels: the column must hold non-negative integers.
    Classification,
    /// Values, whatever they look like.
    Regression,
}

/// What [`apply`] decided from the values, for the run to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inferred {
    /// Distinct labels seen.
    pub distinct: usize,
    /// The largest label (classes are `0..=largest`).
    pub largest: u32,
}

/// The labels in `values` when it is one column of class indices (see [`super::class_index`]).
pub fn labels(values: &Array2<f32>) -> Option<Vec<u32>> {
    if values.ncols() != 1 {
        return None;
    }
    values
        .column(0)
        .iter()
        .map(|&v| super::class_index(v))
        .collect()
}

/// Whether `labels` over their rows look like classes rather than integer-valued amounts: every
/// label at most [`MAX_INFERRED_CLASS`], and at most `max(2, min(256, rows / 5))` distinct.
pub fn look_like_classes(labels: &[u32]) -> bool {
    let mut seen: Vec<u32> = labels.to_vec();
    seen.sort_unstable();
    seen.dedup();
    let limit = (labels.len() / 5).clamp(2, 256);
    seen.last().is_some_and(|&m| m <= MAX_INFERRED_CLASS) && seen.len() <= limit
}

/// `targets` as the task says: class labels when they are, or asked to be, classes (with what
/// was decided, when it was inferred from float values); values when asked for regression, even
/// from an integer file; unchanged otherwise. `name` names the data in errors.
pub fn apply(targets: Targets, task: Task, name: &str) -> Result<(Targets, Option<Inferred>)> {
    let values = match (targets, task) {
        // Integer labels read as values when asked.
        (Targets::Classes(labels), Task::Regression) => {
            let column: Vec<f32> = labels.iter().map(|&c| c as f32).collect();
            let rows = column.len();
            return Ok((
                Targets::Dense(Array2::from_shape_vec((rows, 1), column).map_err(|e| {
                    Error::Data {
                        source_name: name.to_string(),
                        message: format!("could not read the labels as values: {e}"),
                    }
                })?),
                None,
            ));
        }
        (Targets::Classes(labels), _) => return Ok((Targets::Classes(labels), None)),
        (Targets::Dense(values), _) => values,
    };
    let found = labels(&values);
    let classes = match (task, found) {
        (Task::Regression, _) => None,
        (Task::Classification, None) => {
            return Err(Error::Data {
                source_name: name.to_string(),
                message: "--task classification needs one target column of non-negative \
                          integers (class labels), and these targets are not: give the labels, \
                          or --task regression"
                    .into(),
            });
        }
        (Task::Classification, Some(l)) => Some(l),
        (Task::Auto, Some(l)) if look_like_classes(&l) => Some(l),
        (Task::Auto, _) => None,
    };
    Ok(match classes {
        Some(labels) => {
            let mut distinct = labels.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let inferred = Inferred {
                distinct: distinct.len(),
                largest: distinct.last().copied().unwrap_or(0),
            };
            (Targets::Classes(labels), Some(inferred))
        }
        None => (Targets::Dense(values), None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn column(values: &[f32]) -> Targets {
        Targets::Dense(Array2::from_shape_vec((values.len(), 1), values.to_vec()).unwrap())
    }

    #[test]
    fn few_small_integers_are_classes_and_many_or_fractional_values_are_not() {
        let wine: Vec<f32> = (0..178).map(|i| (i % 3) as f32).collect();
        let (t, inferred) = apply(column(&wine), Task::Auto, "wine").unwrap();
        assert!(matches!(t, Targets::Classes(_)));
        assert_eq!(
            inferred,
            Some(Inferred {
                distinct: 3,
                largest: 2
            })
        );
        // Diabetes: 442 integer targets from 25 to 346, about half of them distinct.
        let diabetes: Vec<f32> = (0..442).map(|i| (25 + (i * 13) % 322) as f32).collect();
        let (t, _) = apply(column(&diabetes), Task::Auto, "diabetes").unwrap();
        assert!(matches!(t, Targets::Dense(_)));
        let (t, _) = apply(column(&[0.5, 1.0, 0.0, 1.0]), Task::Auto, "x").unwrap();
        assert!(matches!(t, Targets::Dense(_)));
        // Asked for: classification takes any labels, regression keeps values.
        let (t, _) = apply(column(&diabetes), Task::Classification, "d").unwrap();
        assert!(matches!(t, Targets::Classes(_)));
        let (t, _) = apply(column(&wine), Task::Regression, "w").unwrap();
        assert!(matches!(t, Targets::Dense(_)));
        let (t, _) = apply(Targets::Classes(vec![2, 0]), Task::Regression, "i").unwrap();
        assert!(matches!(t, Targets::Dense(v) if v.column(0).to_vec() == [2.0, 0.0]));
        let e = apply(column(&[0.5]), Task::Classification, "f").unwrap_err();
        assert!(e.to_string().contains("non-negative integers"), "{e}");
    }
}
