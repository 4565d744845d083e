//! Features in an `.npy` file too large to read whole: the file is memory-mapped and each batch's
//! rows are copied out on demand (by the scheduler's producer thread), so only the pages of the
//! rows in use are ever resident. A standardiser, when set, is applied to each row as it is
//! copied out, and can be fitted in one streaming pass over the file.

use std::path::Path;

use ndarray::{Array2, ArrayViewMut1};

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
}

impl MappedNpy {
    /// Maps the features at `path` (C order, 1-D or 2-D) and pairs them with `targets`.
    pub fn open(path: &Path, targets: Targets) -> Result<Self> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| Error::Io {
            action: "could not open",
            path: name.clone(),
            source,
        })?;
        // Safety: the map is read-only; downhill does not write the file while training, and a
        // file changed underneath by another process can only change values, not memory safety
        // of the copies made from it (bounds are checked against the header at open).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| Error::Io {
            action: "could not memory-map",
            path: name.clone(),
            source,
        })?;
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
        };
        mapped.set_targets(targets, &name)?;
        Ok(mapped)
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
