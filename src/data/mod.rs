//! Datasets: readers for NPY, CSV and IDX files, built-in data, standardisation and splits.

pub mod builtin;
mod bus_error;
pub mod csv;
pub mod finite;
pub mod idx;
pub mod load;
pub mod mapped;
pub mod npy;
pub mod scheduler;
pub mod task;

use ndarray::{Array1, Array2, Axis};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::loss::{Loss, Targets};

/// Features and targets held in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Where it came from, for messages.
    pub name: String,
    /// `[rows, inputs]`.
    pub features: Array2<f32>,
    /// One target per row.
    pub targets: Targets,
}

impl Dataset {
    /// A dataset from features and targets, checking that they have the same number of rows.
    pub fn new(name: impl Into<String>, features: Array2<f32>, targets: Targets) -> Result<Self> {
        let name = name.into();
        let target_rows = targets.rows();
        if target_rows != features.nrows() {
            return Err(Error::Data {
                source_name: name,
                message: format!(
                    "has {} feature rows but {target_rows} targets",
                    features.nrows()
                ),
            });
        }
        Ok(Self {
            name,
            features,
            targets,
        })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.features.nrows()
    }

    /// The rows at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        Dataset {
            name: self.name.clone(),
            features: self.features.select(Axis(0), indices),
            targets: match &self.targets {
                Targets::Dense(t) => Targets::Dense(t.select(Axis(0), indices)),
                Targets::Classes(c) => Targets::Classes(indices.iter().map(|&i| c[i]).collect()),
            },
        }
    }

    /// A seeded split: a shuffled `fraction` of the rows (at least one) is held out for
    /// validation; the rest, in their original order, are for training.
    pub fn split(&self, fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(Error::Data {
                source_name: self.name.clone(),
                message: format!(
                    "validation fraction {} must be between 0 and 1 (exclusive)",
                    crate::error::readable(fraction)
                ),
            });
        }
        let mut order: Vec<usize> = (0..self.rows()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let held = ((self.rows() as f64 * fraction).round() as usize).max(1);
        if held >= self.rows() {
            return Err(Error::Data {
                source_name: self.name.clone(),
                message: format!(
                    "has {} rows: too few to hold {fraction} of them out for validation",
                    self.rows()
                ),
            });
        }
        let mut val: Vec<usize> = order[..held].to_vec();
        let mut train: Vec<usize> = order[held..].to_vec();
        val.sort_unstable();
        train.sort_unstable();
        Ok((self.subset(&train), self.subset(&val)))
    }
}

/// `v` as a class index: a whole number from 0 up to `u32::MAX`.
pub fn class_index(v: f32) -> Option<u32> {
    (v >= 0.0 && v.fract() == 0.0 && v <= u32::MAX as f32).then_some(v as u32)
}

/// Converts raw target values for `loss`: one integer column becomes class indices for
/// cross-entropy; everything else stays as float targets.
pub fn targets_for(values: Array2<f32>, loss: Loss, name: &str) -> Result<Targets> {
    if !loss.takes_class_indices() || values.ncols() != 1 {
        return Ok(Targets::Dense(values));
    }
    values
        .iter()
        .enumerate()
        .map(|(row, &v)| {
            if let Some(class) = class_index(v) {
                Ok(class)
            } else {
                Err(Error::Data {
                    source_name: name.to_string(),
                    message: format!(
                        "row {row}: target {v} is not a class index; cross-entropy takes one column \
                         of class indices 0, 1, ... or one column per class (one-hot or soft)"
                    ),
                })
            }
        })
        .collect::<Result<Vec<_>>>()
        .map(Targets::Classes)
}

/// Per-feature standardisation `x' = (x − μ) / σ`, fitted on training data only.
/// Features with `σ = 0` are only centred (σ is taken as 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    /// Means μ.
    pub mean: Array1<f32>,
    /// Standard deviations σ (population, never 0).
    pub std: Array1<f32>,
}

impl Standardizer {
    /// Fits μ and σ to the columns of `features` (computed in f64).
    pub fn fit(features: &Array2<f32>) -> Self {
        let mut fit = StandardizerFit::new(features.ncols());
        for row in features.rows() {
            fit.add(row.iter().copied());
        }
        fit.finish()
    }

    /// Applies the fitted transform in place to one row.
    pub fn apply_row(&self, mut row: ndarray::ArrayViewMut1<'_, f32>) {
        row -= &self.mean;
        row /= &self.std;
    }

    /// Undoes [`Standardizer::apply`] on `values` (`[rows, columns]`): `x ← x·σ + μ`.
    pub fn invert(&self, values: &mut Array2<f32>) {
        for mut row in values.rows_mut() {
            row.iter_mut()
                .zip(self.std.iter().zip(&self.mean))
                .for_each(|(x, (&s, &m))| *x = *x * s + m);
        }
    }

    /// Applies the fitted transform in place; the features must have one column per statistic.
    pub fn apply(&self, features: &mut Array2<f32>) -> Result<()> {
        if features.ncols() != self.mean.len() {
            return Err(Error::Shape {
                what: "features to standardise".into(),
                expected: format!(
                    "[rows, {}] (the columns the statistics were fitted on)",
                    self.mean.len()
                ),
                got: format!("{:?}", features.shape()),
            });
        }
        for row in features.rows_mut() {
            self.apply_row(row);
        }
        Ok(())
    }
}

/// Column means and deviations accumulated one row at a time (Welford's method, in f64), so
/// that data streamed from disk is fitted exactly as data in memory.
#[derive(Debug, Clone)]
pub struct StandardizerFit {
    rows: u64,
    mean: Vec<f64>,
    m2: Vec<f64>,
}

impl StandardizerFit {
    /// An empty fit over `cols` columns.
    pub fn new(cols: usize) -> Self {
        Self {
            rows: 0,
            mean: vec![0.0; cols],
            m2: vec![0.0; cols],
        }
    }

    /// Adds one row.
    pub fn add(&mut self, row: impl Iterator<Item = f32>) {
        self.rows += 1;
        let n = self.rows as f64;
        for ((mean, m2), x) in self.mean.iter_mut().zip(&mut self.m2).zip(row) {
            let x = f64::from(x);
            let delta = x - *mean;
            *mean += delta / n;
            *m2 += delta * (x - *mean);
        }
    }

    /// μ and the population σ (σ = 0 becomes 1, so constant features are only centred).
    pub fn finish(self) -> Standardizer {
        let n = self.rows.max(1) as f64;
        Standardizer {
            mean: self.mean.iter().map(|&m| m as f32).collect(),
            std: self
                .m2
                .iter()
                .map(|&m2| {
                    let s = (m2 / n).sqrt();
                    if s > 0.0 { s as f32 } else { 1.0 }
                })
                .collect(),
        }
    }
}

/// Whether an array of these dimensions and element size can be held in memory at all: the
/// product of its non-zero dimensions, in bytes, fits in `isize` (what `Vec` and ndarray require,
/// even when another dimension is zero and the array is empty).
pub(crate) fn addressable(dims: &[usize], element_size: usize) -> bool {
    dims.iter()
        .filter(|&&d| d > 0)
        .try_fold(element_size, |acc, &d| acc.checked_mul(d))
        .is_some_and(|bytes| isize::try_from(bytes).is_ok())
}
