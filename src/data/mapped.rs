//! Features in an `.npy` file too large to read whole: the file is memory-mapped and each batch's
//! rows are copied out on demand (by the scheduler's producer thread), so only the pages of the
//! rows in use are ever resident.

use std::path::Path;

use ndarray::Array2;

use super::npy::{DType, Header, parse_header, value};
use super::scheduler::{Source, gather_targets};
use crate::error::{Error, Result};
use crate::loss::Targets;

/// A memory-mapped feature matrix with its targets in memory.
pub struct MappedNpy {
    map: memmap2::Mmap,
    header: Header,
    cols: usize,
    rows: usize,
    targets: Targets,
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
        let target_rows = match &targets {
            Targets::Classes(c) => c.len(),
            Targets::Dense(d) => d.nrows(),
        };
        if target_rows != rows {
            return Err(Error::Data {
                source_name: name,
                message: format!("has {rows} feature rows but there are {target_rows} targets"),
            });
        }
        Ok(Self {
            map,
            header,
            cols,
            rows,
            targets,
        })
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
        let data = &self.map[self.header.data_offset..];
        let size = self.header.dtype.size();
        let little_f32 = self.header.dtype == DType::Float(4) && !self.header.big_endian;
        for (mut out, &row) in features.rows_mut().into_iter().zip(indices) {
            let start = row as usize * self.cols;
            if little_f32 {
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
        Ok(gather_targets(&self.targets.view(), indices))
    }
}
