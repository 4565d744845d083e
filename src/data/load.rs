//! Loading a dataset from what a user names: feature and target files (NPY or IDX, raw or gzip,
//! recognised by their content), a CSV file, or a built-in dataset; and fitting the targets to
//! the loss and the output layer.

use std::path::Path;

use ndarray::Array2;

use super::csv::{CsvOptions, read as read_csv};
use super::finite::{finite_rows, refuse_nonfinite};
use super::{Dataset, builtin, idx, npy, targets_for};
use crate::error::{Error, Result};
use crate::fsio::{self, Extent};
use crate::loss::{Loss, Targets};

/// Where a dataset comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSpec {
    /// A feature file and a target file, each `.npy` or IDX (optionally gzip-compressed).
    Files {
        /// Features, `[rows, inputs]` (IDX images are flattened per item).
        features: std::path::PathBuf,
        /// Targets: integer values are class indices, floats are values.
        targets: std::path::PathBuf,
        /// Skip the rows holding NaN or infinity (in either file) instead of refusing them.
        drop_nonfinite: bool,
    },
    /// A CSV file with its options.
    Csv {
        /// The file.
        path: std::path::PathBuf,
        /// Header, target columns, and whether rows holding NaN or infinity are skipped.
        options: CsvOptions,
    },
    /// A built-in dataset by name, drawn from `seed` when synthetic.
    Builtin {
        /// `digits`, `linear`, `blobs` or `spirals`.
        name: String,
        /// Seed of the synthetic generators.
        seed: u64,
    },
}

/// The kinds of array file downhill recognises by content.
enum Format {
    Npy,
    Idx,
}

/// The bytes [`sniff`] needs to tell the formats apart.
const SNIFF: usize = 6;

fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(b"\x93NUMPY") {
        Some(Format::Npy)
    } else if bytes.starts_with(&[0x1f, 0x8b]) || bytes.starts_with(&[0, 0]) {
        Some(Format::Idx)
    } else {
        None
    }
}

/// How much of a feature or target file to read, judged from its first bytes: enough to tell
/// its format, then what that format's header declares.
fn extent(head: &[u8]) -> Extent {
    if head.len() < SNIFF {
        return Extent::AtLeast(SNIFF);
    }
    match sniff(head) {
        Some(Format::Npy) => npy::extent(head),
        Some(Format::Idx) => idx::extent(head),
        None => Extent::Total(head.len()),
    }
}

/// What a file given as an array holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Features: IDX items of any rank are flattened to one row each.
    Features,
    /// Targets: labels `[rows]` or values `[rows, outputs]`, nothing of higher rank.
    Targets,
}

/// What to do about NaN or infinity in a file that stands alone.
const FIX_FILE: &str = "replace such values in the file";

/// What to do about NaN or infinity in training data read whole.
const FIX_OR_DROP: &str =
    "replace such values in the file, or pass --drop-nonfinite to skip the rows that hold them";

/// Reads a feature or target file (once: a pipe works): the values as a matrix, and as class
/// indices when they are one column of integers.
fn read_array(path: &Path, role: Role) -> Result<(Array2<f32>, Option<Vec<u32>>)> {
    let name = path.display().to_string();
    let bytes = fsio::read_until(path, extent)?;
    match sniff(&bytes) {
        Some(Format::Npy) => {
            let array = npy::Npy::from_bytes(bytes, &name)?;
            let classes =
                if array.header.dtype.is_integer() && array.header.matrix_shape(&name)?.1 == 1 {
                    Some(array.to_classes()?)
                } else {
                    None
                };
            Ok((array.to_matrix()?, classes))
        }
        Some(Format::Idx) => {
            let array = idx::parse(&bytes, &name)?;
            drop(bytes);
            if role == Role::Targets && array.dims.len() > 2 {
                return Err(Error::Data {
                    source_name: name,
                    message: format!(
                        "has dimensions {:?}, but targets are labels [rows] or values \
                         [rows, outputs]; was an image file given as --targets?",
                        array.dims
                    ),
                });
            }
            let classes = (array.dims.len() == 1)
                .then(|| array.to_classes(&name))
                .transpose()?;
            Ok((array.into_matrix(), classes))
        }
        None => Err(Error::Data {
            source_name: name,
            message:
                "is neither a NumPy .npy file nor an IDX file (raw or gzip); for CSV use --data"
                    .into(),
        }),
    }
}

/// Reads a feature file alone (`.npy` or IDX, raw or gzip), refusing NaN and infinity.
pub fn load_features(path: &Path) -> Result<Array2<f32>> {
    let (values, _) = read_array(path, Role::Features)?;
    refuse_nonfinite(values.view(), &path.display().to_string(), FIX_FILE)?;
    Ok(values)
}

/// Reads a target file alone (class indices when it holds one column of integers), refusing
/// NaN and infinity.
pub fn load_targets(path: &Path) -> Result<Targets> {
    let (values, classes) = read_array(path, Role::Targets)?;
    refuse_nonfinite(values.view(), &path.display().to_string(), FIX_FILE)?;
    Ok(classes.map_or(Targets::Dense(values), Targets::Classes))
}

/// Reads a feature file and a target file as a dataset. NaN or infinity in either is refused,
/// naming the file, row and column; with `drop_nonfinite`, the rows holding any are skipped in
/// both instead, and how many were is returned with the dataset.
pub fn load_files(
    features: &Path,
    targets: &Path,
    drop_nonfinite: bool,
) -> Result<(Dataset, usize)> {
    let read = |path: &Path, role| {
        let (values, classes) = read_array(path, role)?;
        if !drop_nonfinite {
            refuse_nonfinite(values.view(), &path.display().to_string(), FIX_OR_DROP)?;
        }
        Ok::<_, Error>((values, classes))
    };
    let (x, _) = read(features, Role::Features)?;
    let (y, classes) = read(targets, Role::Targets)?;
    if y.nrows() != x.nrows() {
        return Err(Error::Data {
            source_name: features.display().to_string(),
            message: format!(
                "has {} rows but {} has {}; features and targets need one row per sample, in \
                 the same order",
                x.nrows(),
                targets.display(),
                y.nrows()
            ),
        });
    }
    let keep: Vec<usize> = finite_rows(x.view())
        .into_iter()
        .zip(finite_rows(y.view()))
        .enumerate()
        .filter_map(|(row, (x, y))| (x && y).then_some(row))
        .collect();
    let dropped = x.nrows() - keep.len();
    let name = features.display().to_string();
    let data = Dataset::new(
        name.clone(),
        x,
        classes.map_or(Targets::Dense(y), Targets::Classes),
    )?;
    if dropped == 0 {
        return Ok((data, 0));
    }
    if keep.is_empty() {
        return Err(Error::Data {
            source_name: name,
            message: format!(
                "has no rows left: all {dropped} held NaN or infinite values (here or in {})",
                targets.display()
            ),
        });
    }
    Ok((data.subset(&keep), dropped))
}

/// Reads a CSV file as a dataset; also returns how many rows were skipped for NaN or infinite
/// values (with `options.drop_nonfinite`).
pub fn load_csv(path: &Path, options: &CsvOptions) -> Result<(Dataset, usize)> {
    let data = read_csv(path, options)?;
    let dataset = Dataset::new(
        path.display().to_string(),
        data.features,
        Targets::Dense(data.targets),
    )?;
    Ok((dataset, data.dropped))
}

/// Loads the dataset `spec` names; also returns how many rows were skipped for NaN or infinite
/// values (where the spec asks for that).
pub fn load(spec: &DataSpec) -> Result<(Dataset, usize)> {
    match spec {
        DataSpec::Builtin { name, seed } => builtin::load(name, *seed).map(|data| (data, 0)),
        DataSpec::Csv { path, options } => load_csv(path, options),
        DataSpec::Files {
            features,
            targets,
            drop_nonfinite,
        } => load_files(features, targets, *drop_nonfinite),
    }
}

impl DataSpec {
    /// Whether rows holding NaN or infinity are skipped rather than refused.
    pub fn drops_nonfinite(&self) -> bool {
        match self {
            DataSpec::Files { drop_nonfinite, .. } => *drop_nonfinite,
            DataSpec::Csv { options, .. } => options.drop_nonfinite,
            DataSpec::Builtin { .. } => false,
        }
    }
}

/// The number of outputs the targets call for: one per class for class indices under
/// cross-entropy (one for binary labels under bce-logits), the column count otherwise.
pub fn outputs_for(targets: &Targets, loss: Loss) -> usize {
    match (targets, loss) {
        (Targets::Classes(c), loss) if loss.takes_class_indices() => {
            c.iter().max().map_or(1, |&m| m as usize + 1)
        }
        (Targets::Classes(_), _) => 1,
        (Targets::Dense(d), _) => d.ncols(),
    }
}

/// Fits `targets` to `loss` and a model with `outputs` outputs: class indices stay classes for
/// cross-entropy, become a 0/1 column (one output) or one-hot rows for the other losses; one
/// float column of whole numbers becomes class indices for cross-entropy.
pub fn adapt_targets(targets: Targets, loss: Loss, outputs: usize, name: &str) -> Result<Targets> {
    match (targets, loss) {
        (Targets::Classes(c), loss) if loss.takes_class_indices() => Ok(Targets::Classes(c)),
        (Targets::Classes(c), _) if outputs == 1 => Ok(Targets::Dense(Array2::from_shape_fn(
            (c.len(), 1),
            |(r, _)| c[r] as f32,
        ))),
        (Targets::Classes(c), _) => {
            if let Some((row, &k)) = c.iter().enumerate().find(|&(_, &k)| k as usize >= outputs) {
                return Err(Error::Data {
                    source_name: name.to_string(),
                    message: format!(
                        "row {row}: class {k} has no output among the model's {outputs}"
                    ),
                });
            }
            Ok(Targets::Dense(Array2::from_shape_fn(
                (c.len(), outputs),
                |(r, j)| f32::from(u8::from(c[r] as usize == j)),
            )))
        }
        (Targets::Dense(d), loss) => targets_for(d, loss, name),
    }
}
