//! Features in an `.npy` file too large to read whole: the file is memory-mapped and each batch's
//! rows are copied out on demand (by the scheduler's producer thread), so only the pages of the
//! rows in use are ever resident. A standardiser, when set, is applied to each row as it is
//! copied out, and can be fitted in one streaming pass over the file. The file must stay as it
//! is during the run: a change of its length or modification time is reported at the next batch,
//! and a read past a new end ends the process with a message (see `bus_error`).

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::SystemTime;

use ndarray::{Array2, ArrayViewMut1};

use super::finite::{first_nonfinite, nonfinite_error};
use super::npy::{DType, Header, parse_header, value};
use super::scheduler::{Source, gather_targets};
use super::{Standardizer, StandardizerFit};
use crate::error::{Error, Result};
use crate::loss::Targets;

/// A memory-mapped feature matrix with its targets in memory.
pub struct MappedNpy {
    map: memmap2::Mmap,
    header: Header,
    cols: usize,
    rows: usize,
    targets: Targets,
    standardizer: Option<Standardizer>,
    /// The file, its length and its modification time when it was mapped: a file that changes
    /// under the run is reported rather than read.
    file: std::fs::File,
    name: String,
    length: u64,
    modified: Option<SystemTime>,
}

impl MappedNpy {
    /// Maps the features at `path` (a regular file; C order, 1-D or 2-D) and pairs them with
    /// `targets`. Every value is checked to be finite, in one sequential pass.
    pub fn open(path: &Path, targets: Targets) -> Result<Self> {
        let name = path.display().to_string();
        let io = |action: &'static str| {
            let name = name.clone();
            move |source| Error::Io {
                action,
                path: name,
                source,
            }
        };
        let not_regular = || Error::Data {
            source_name: name.clone(),
            message: "is not a regular file (a pipe, a FIFO, a device or a directory), so it \
                      cannot be memory-mapped; drop --mmap to read it whole"
                .into(),
        };
        // Checked before opening, which could disturb a FIFO's writer; opened without blocking
        // in case the path changed in between.
        if !std::fs::metadata(path)
            .map_err(io("could not open"))?
            .is_file()
        {
            return Err(not_regular());
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(io("could not open"))?;
        let metadata = file.metadata().map_err(io("could not read"))?;
        if !metadata.is_file() {
            return Err(not_regular());
        }
        // Safety: the map is read-only and downhill does not write the file while training. A
        // file changed underneath by another process is noticed before each batch is copied
        // out (see `unchanged`); one that shrinks during a copy raises SIGBUS, which
        // `bus_error::watch` turns into a message and a clean exit.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io("could not memory-map"))?;
        super::bus_error::watch(path).map_err(io("could not watch for changes to"))?;
        let header = parse_header(&map, &name)?;
        if header.fortran_order {
            return Err(Error::Data {
                source_name: name,
                message:
                    "is in Fortran (column-major) order, which cannot be streamed row by row; \
                          save it in C order (np.ascontiguousarray) or load it whole"
                        .into(),
            });
        }
        let (rows, cols) = header.matrix_shape(&name)?;
        let mut mapped = Self {
            map,
            header,
            cols,
            rows,
            targets: Targets::Classes(Vec::new()),
            standardizer: None,
            file,
            length: metadata.len(),
            modified: metadata.modified().ok(),
            name: name.clone(),
        };
        mapped.refuse_nonfinite()?;
        mapped.set_targets(targets, &name)?;
        Ok(mapped)
    }

    /// Refuses the file when a value is NaN or infinite (as f32), naming the first.
    fn refuse_nonfinite(&self) -> Result<()> {
        if self.header.dtype.is_integer() {
            return Ok(());
        }
        let mut row = Array2::zeros((1, self.cols));
        for r in 0..self.rows {
            self.read_row(r, row.row_mut(0));
            if let Some((_, column, value)) = first_nonfinite(row.view()) {
                return Err(nonfinite_error(
                    &self.name,
                    (r, column, value),
                    "replace such values in the file; rows cannot be skipped in a memory-mapped \
                     file, so to skip them (--drop-nonfinite) drop --mmap and load it whole",
                ));
            }
        }
        Ok(())
    }

    /// Refuses to read on when the file's length or modification time is no longer what it was
    /// when it was mapped.
    fn unchanged(&self) -> Result<()> {
        let now = self.file.metadata().map_err(|source| Error::Io {
            action: "could not read",
            path: self.name.clone(),
            source,
        })?;
        let change = if now.len() != self.length {
            format!(
                "its length went from {} to {} bytes",
                self.length,
                now.len()
            )
        } else if now.modified().ok() != self.modified {
            "its modification time changed".to_string()
        } else {
            return Ok(());
        };
        Err(Error::Data {
            source_name: self.name.clone(),
            message: format!(
                "the memory-mapped file changed under the run ({change}); a file being streamed \
                 must stay as it is until the run ends: restore it, or write new data to another \
                 file, and resume from the last training-state checkpoint with --resume"
            ),
        })
    }

    /// Replaces the targets (for instance once they are fitted to the loss); `name` is the
    /// feature file, for messages.
    pub fn set_targets(&mut self, targets: Targets, name: &str) -> Result<()> {
        let target_rows = targets.rows();
        if target_rows != self.rows {
            return Err(Error::Data {
                source_name: name.to_string(),
                message: format!(
                    "has {} feature rows but there are {target_rows} targets",
                    self.rows
                ),
            });
        }
        self.targets = targets;
        Ok(())
    }

    /// Standardises every row copied out from now on (or stops, with `None`).
    pub fn set_standardizer(&mut self, standardizer: Option<Standardizer>) -> Result<()> {
        if let Some(s) = &standardizer
            && s.mean.len() != self.cols
        {
            return Err(Error::Shape {
                what: "feature statistics for the memory-mapped features".into(),
                expected: format!("{} columns", self.cols),
                got: format!("{} columns", s.mean.len()),
            });
        }
        self.standardizer = standardizer;
        Ok(())
    }

    /// Fits a standardiser to the file's raw features in one pass, row by row.
    pub fn fit_standardizer(&self) -> Standardizer {
        let mut fit = StandardizerFit::new(self.cols);
        let mut row = ndarray::Array1::zeros(self.cols);
        for r in 0..self.rows {
            self.read_row(r, row.view_mut());
            fit.add(row.iter().copied());
        }
        fit.finish()
    }

    /// Row `row`'s raw values.
    fn read_row(&self, row: usize, mut out: ArrayViewMut1<'_, f32>) {
        let data = &self.map[self.header.data_offset..];
        let size = self.header.dtype.size();
        let start = row * self.cols;
        if self.header.dtype == DType::Float(4) && !self.header.big_endian {
            let bytes = &data[start * size..(start + self.cols) * size];
            for (o, chunk) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            }
        } else {
            for (c, o) in out.iter_mut().enumerate() {
                *o = value(data, &self.header, start + c) as f32;
            }
        }
    }

    /// Columns per row.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The targets.
    pub fn targets(&self) -> &Targets {
        &self.targets
    }
}

impl Source for MappedNpy {
    fn rows(&self) -> usize {
        self.rows
    }

    fn gather(&self, indices: &[u32], features: &mut Array2<f32>) -> Result<Targets> {
        self.unchanged()?;
        if features.dim() != (indices.len(), self.cols) {
            *features = Array2::zeros((indices.len(), self.cols));
        }
        for (out, &row) in features.rows_mut().into_iter().zip(indices) {
            self.read_row(row as usize, out);
        }
        if let Some(s) = &self.standardizer {
            for out in features.rows_mut() {
                s.apply_row(out);
            }
        }
        Ok(gather_targets(&self.targets.view(), indices))
    }
}
