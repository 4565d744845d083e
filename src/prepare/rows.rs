//! A run's rows: the training rows, read whole or memory-mapped, and the validation rows, from
//! files of their own or a seeded split of the training rows.

use ndarray::Array2;

use crate::data::Dataset;
use crate::data::load::{DataSpec, load, load_targets};
use crate::data::mapped::MappedNpy;
use crate::error::{Error, Result};

use super::memory::too_large_for_memory;
use super::{MemoryMap, Note, RunRequest, Validation};

/// The rows a run reads, before its targets are fitted to the model.
pub(super) struct Rows {
    /// The training rows; when the features are memory-mapped, the targets alone (and no
    /// feature columns).
    pub train: Dataset,
    /// The memory-mapped training features, when they stream from disk.
    pub mapped: Option<MappedNpy>,
    /// The training features' columns.
    pub feature_cols: usize,
    /// The validation rows, if any.
    pub validation: Option<Dataset>,
}

/// The rows `request` names (`spec` for the training rows), and its validation rows; a
/// `default_run` holds out 20% unless validation is given.
pub(super) fn load_rows(
    request: &RunRequest,
    spec: &DataSpec,
    default_run: bool,
    on_note: &mut dyn FnMut(Note),
) -> Result<Rows> {
    let (mut train, mapped, feature_cols) = if memory_mapped(request, spec, on_note)? {
        let (train, source) = mapped_rows(spec)?;
        let cols = source.cols();
        (train, Some(source), cols)
    } else {
        let train = load_noting(spec, on_note)?;
        let cols = train.features.ncols();
        (train, None, cols)
    };
    if train.rows() == 0 {
        return Err(Error::Data {
            source_name: train.name.clone(),
            message: "has no rows: there is nothing to train on".into(),
        });
    }
    let mut validation = match &request.validation {
        Validation::Data(spec) => Some(load_noting(spec, on_note)?),
        Validation::None | Validation::Split(_) => None,
    };
    let split = match request.validation {
        Validation::Split(fraction) => Some(fraction),
        Validation::None if default_run => Some(0.2),
        Validation::None | Validation::Data(_) => None,
    };
    if let Some(fraction) = split {
        if mapped.is_some() {
            return Err(Error::Usage("--val-split needs the features in memory, and these are memory-mapped (--mmap, or too large for memory): give --val-features/--val-targets".into()));
        }
        let (t, v) = train.split(fraction, request.seed)?;
        train = t;
        validation = Some(v);
    }
    Ok(Rows {
        train,
        mapped,
        feature_cols,
        validation,
    })
}

/// Whether the training features are to be memory-mapped: always when asked, or (with
/// [`MemoryMap::Auto`]) when they are an `.npy` file larger than half the memory available, said
/// in a [`Note::MemoryMapped`]. With [`MemoryMap::Never`], such a file is refused.
fn memory_mapped(
    request: &RunRequest,
    spec: &DataSpec,
    on_note: &mut dyn FnMut(Note),
) -> Result<bool> {
    let features = match spec {
        DataSpec::Files { features, .. } => Some(features.as_path()),
        DataSpec::Csv { .. } | DataSpec::Builtin { .. } => None,
    };
    let too_large = || features.and_then(|p| too_large_for_memory(p).map(|bytes| (p, bytes)));
    match request.memory_map {
        MemoryMap::Always => Ok(true),
        MemoryMap::Auto => Ok(too_large()
            .map(|(path, bytes)| {
                on_note(Note::MemoryMapped {
                    path: path.to_path_buf(),
                    bytes,
                })
            })
            .is_some()),
        MemoryMap::Never => match too_large() {
            Some((path, bytes)) => Err(Error::Data {
                source_name: path.display().to_string(),
                message: format!(
                    "is {} MiB, over half the available memory, and this run reads all its rows \
                     into memory: give a smaller file (a training run memory-maps such a file \
                     and streams it from disk)",
                    bytes >> 20
                ),
            }),
            None => Ok(false),
        },
    }
}

/// The training rows with memory-mapped features: the targets read whole (the dataset holds
/// them alone), the features left on disk.
fn mapped_rows(spec: &DataSpec) -> Result<(Dataset, MappedNpy)> {
    if spec.drops_nonfinite() {
        return Err(Error::Usage(
            "--drop-nonfinite needs the features in memory, and memory-mapped rows cannot be \
             skipped: drop --mmap (or clean the file)"
                .into(),
        ));
    }
    let DataSpec::Files {
        features, targets, ..
    } = spec
    else {
        return Err(Error::Usage(
            "--mmap streams a --features .npy file: give --features and --targets".into(),
        ));
    };
    let targets = load_targets(targets)?;
    let rows = targets.rows();
    let source = MappedNpy::open(features, targets.clone())?;
    let train = Dataset::new(
        features.display().to_string(),
        Array2::zeros((rows, 0)),
        targets,
    )?;
    Ok((train, source))
}

/// The dataset `spec` names, the rows it skipped (if any) told in a [`Note::RowsDropped`].
fn load_noting(spec: &DataSpec, on_note: &mut dyn FnMut(Note)) -> Result<Dataset> {
    let (data, dropped) = load(spec)?;
    if dropped > 0 {
        on_note(Note::RowsDropped {
            source: data.name.clone(),
            dropped,
            kept: data.rows(),
        });
    }
    Ok(data)
}
