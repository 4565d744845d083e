//! NumPy `.npy` files: versions 1 to 3, little- or big-endian integer, boolean and float dtypes,
//! C or Fortran order. Sizes are checked against the file before anything is allocated.

use std::path::Path;

use ndarray::{Array2, ShapeBuilder};

use crate::error::{Error, Result};
use crate::fsio;

const MAGIC: &[u8] = b"\x93NUMPY";

/// The element types downhill reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// IEEE float of 4 or 8 bytes.
    Float(usize),
    /// Signed integer of 1, 2, 4 or 8 bytes.
    Int(usize),
    /// Unsigned integer (or bool) of 1, 2, 4 or 8 bytes.
    UInt(usize),
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Float(n) | DType::Int(n) | DType::UInt(n) => n,
        }
    }

    /// Whether values are integers (class indices).
    pub fn is_integer(self) -> bool {
        !matches!(self, DType::Float(_))
    }
}

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Element type.
    pub dtype: DType,
    /// Big-endian data.
    pub big_endian: bool,
    /// Column-major data.
    pub fortran_order: bool,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Byte offset of the data.
    pub data_offset: usize,
}

impl Header {
    /// Number of elements, or `None` if it overflows.
    pub fn elements(&self) -> Option<usize> {
        self.shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// `(rows, cols)` of the file read as a matrix: a 1-D array is one column.
    pub fn matrix_shape(&self, name: &str) -> Result<(usize, usize)> {
        match self.shape[..] {
            [n] => Ok((n, 1)),
            [rows, cols] => Ok((rows, cols)),
            _ => Err(bad(
                name,
                format!(
                    "has shape {:?}; downhill reads 1-D (one value per row) or 2-D [rows, columns] \
                     arrays: reshape it to 2-D first (e.g. x.reshape(len(x), -1))",
                    self.shape
                ),
            )),
        }
    }
}

fn bad(name: &str, message: impl Into<String>) -> Error {
    Error::Data {
        source_name: name.to_string(),
        message: message.into(),
    }
}

/// The value of `'key': value` in the header dictionary text.
fn field<'a>(dict: &'a str, key: &str) -> Option<&'a str> {
    let at = dict.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = dict[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else if let Some(quoted) = rest.strip_prefix('\'') {
        quoted.find('\'')? + 2
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

/// Parses the header at the start of `bytes` (the file named `name`).
pub fn parse_header(bytes: &[u8], name: &str) -> Result<Header> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad(
            name,
            "is not a NumPy .npy file (it does not start with \\x93NUMPY)",
        ));
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        2 | 3 => return Err(bad(name, "is truncated inside its header")),
        v => {
            return Err(bad(
                name,
                format!(
                    "uses .npy format version {v}.{}; downhill reads versions 1, 2 and 3",
                    bytes[7]
                ),
            ));
        }
    };
    let end = start
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            bad(
                name,
                format!(
                    "is truncated: its header claims {len} bytes but the file has {}",
                    bytes.len() - start
                ),
            )
        })?;
    let dict = std::str::from_utf8(&bytes[start..end])
        .map_err(|_| bad(name, "has a header that is not text"))?;
    let descr = field(dict, "descr")
        .and_then(|d| d.strip_prefix('\'')?.strip_suffix('\''))
        .ok_or_else(|| {
            bad(
                name,
                format!("has no readable 'descr' in its header {dict:?}"),
            )
        })?;
    let (big_endian, code) = match descr.as_bytes().first() {
        Some(b'<') | Some(b'|') | Some(b'=') => (false, &descr[1..]),
        Some(b'>') => (true, &descr[1..]),
        _ => (false, descr),
    };
    let size = |s: &str| s.parse::<usize>().ok().filter(|n| [1, 2, 4, 8].contains(n));
    let dtype = match (code.get(..1), code.get(1..).and_then(size)) {
        (Some("f"), Some(n @ (4 | 8))) => DType::Float(n),
        (Some("i"), Some(n)) => DType::Int(n),
        (Some("u"), Some(n)) | (Some("b"), Some(n @ 1)) => DType::UInt(n),
        _ => {
            return Err(bad(
                name,
                format!(
                    "has dtype '{descr}'; downhill reads float32/float64, signed and unsigned \
                     integers and bool: convert it with x.astype(np.float32) (features) or \
                     x.astype(np.int64) (class indices)"
                ),
            ));
        }
    };
    let fortran_order = match field(dict, "fortran_order") {
        Some("False") => false,
        Some("True") => true,
        other => {
            return Err(bad(
                name,
                format!("has an unreadable 'fortran_order' ({other:?})"),
            ));
        }
    };
    let shape_text = field(dict, "shape")
        .and_then(|s| s.strip_prefix('(')?.strip_suffix(')'))
        .ok_or_else(|| bad(name, "has no readable 'shape' in its header"))?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| bad(name, format!("has an unreadable shape ({shape_text})")))?;
    let header = Header {
        dtype,
        big_endian,
        fortran_order,
        shape,
        data_offset: end,
    };
    let needed = header
        .elements()
        .and_then(|n| n.checked_mul(dtype.size()))
        .filter(|_| super::addressable(&header.shape, dtype.size()))
        .ok_or_else(|| {
            bad(
                name,
                format!("claims an impossible shape {:?}", header.shape),
            )
        })?;
    let available = bytes.len() - end;
    if needed > available {
        return Err(bad(
            name,
            format!(
                "is truncated: shape {:?} of '{descr}' needs {needed} bytes of data but the file has {available}",
                header.shape
            ),
        ));
    }
    Ok(header)
}

/// Element `i` of raw data as f64 (exact for every integer a class index can be).
pub fn value(data: &[u8], header: &Header, i: usize) -> f64 {
    let n = header.dtype.size();
    let mut raw = [0u8; 8];
    raw[..n].copy_from_slice(&data[i * n..(i + 1) * n]);
    if header.big_endian {
        raw[..n].reverse();
    }
    match header.dtype {
        DType::Float(4) => f64::from(f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]])),
        DType::Float(_) => f64::from_le_bytes(raw),
        DType::Int(n) => {
            let shift = 64 - 8 * n as u32;
            ((i64::from_le_bytes(raw) << shift) >> shift) as f64
        }
        DType::UInt(_) => u64::from_le_bytes(raw) as f64,
    }
}

/// An `.npy` file read whole into memory.
#[derive(Debug, Clone)]
pub struct Npy {
    /// Its header.
    pub header: Header,
    /// The data bytes.
    pub data: Vec<u8>,
    /// The path, for messages.
    pub name: String,
}

impl Npy {
    /// Reads and checks `path`.
    pub fn read(path: &Path) -> Result<Self> {
        Self::from_bytes(fsio::read(path)?, &path.display().to_string())
    }

    /// Parses a whole file held in memory.
    pub fn from_bytes(mut bytes: Vec<u8>, name: &str) -> Result<Self> {
        let header = parse_header(&bytes, name)?;
        let data: Vec<u8> = bytes.drain(header.data_offset..).collect();
        Ok(Self {
            header,
            data,
            name: name.to_string(),
        })
    }

    /// The values as an f32 matrix `[rows, cols]` (1-D arrays become one column), row-major.
    pub fn to_matrix(&self) -> Result<Array2<f32>> {
        let (rows, cols) = self.header.matrix_shape(&self.name)?;
        let values: Vec<f32> = (0..rows * cols)
            .map(|i| value(&self.data, &self.header, i) as f32)
            .collect();
        let shape = if self.header.fortran_order {
            (rows, cols).f()
        } else {
            (rows, cols).into_shape_with_order()
        };
        let array = Array2::from_shape_vec(shape, values).expect("the header's size was checked");
        Ok(array.as_standard_layout().into_owned())
    }

    /// The values as class indices: a 1-D (or one-column) integer array of non-negative values.
    pub fn to_classes(&self) -> Result<Vec<u32>> {
        let (rows, cols) = self.header.matrix_shape(&self.name)?;
        if cols != 1 || !self.header.dtype.is_integer() {
            return Err(bad(
                &self.name,
                format!(
                    "class indices must be a 1-D integer array; this is {:?} of {:?}",
                    self.header.shape, self.header.dtype
                ),
            ));
        }
        (0..rows)
            .map(|row| {
                let v = value(&self.data, &self.header, row);
                if v < 0.0 || v > f64::from(u32::MAX) {
                    Err(bad(
                        &self.name,
                        format!("row {row}: class index {v} is negative or too large"),
                    ))
                } else {
                    Ok(v as u32)
                }
            })
            .collect()
    }
}

/// The bytes of a version-1 `.npy` file holding `array` as little-endian f32, C order.
pub fn to_bytes(array: &Array2<f32>) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
        array.nrows(),
        array.ncols()
    );
    // Pad with spaces so that the data starts at a multiple of 64 bytes, ending in a newline.
    let unpadded = MAGIC.len() + 4 + dict.len() + 1;
    let header_len = dict.len() + 1 + (64 - unpadded % 64) % 64;
    let mut out = Vec::with_capacity(10 + header_len + array.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(10 + header_len - 1, b' ');
    out.push(b'\n');
    for v in array.iter() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes `array` to `path` as `.npy`, atomically.
pub fn write(path: &Path, array: &Array2<f32>) -> Result<()> {
    fsio::write_atomic(path, &to_bytes(array))
}
