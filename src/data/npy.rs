//! NumPy `.npy` files: versions 1 to 3, little- or big-endian integer, boolean and float dtypes,
//! C or Fortran order. Sizes are checked against the file before anything is allocated.

use std::path::Path;

use ndarray::{Array2, ShapeBuilder};

use crate::error::{Error, Result};
use crate::fsio::{self, Extent};

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

/// Parses the header at the start of `bytes` (the file named `name`), checking that its data
/// follows.
pub fn parse_header(bytes: &[u8], name: &str) -> Result<Header> {
    let (header, needed, descr) = declared(bytes, name)?;
    let available = bytes.len() - header.data_offset;
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

/// How much of an `.npy` input to read, judged from its first bytes: its header, then the data
/// the header declares and no more. Whatever is wrong with the header stops the reading, for
/// [`parse_header`] to report.
pub fn extent(head: &[u8]) -> Extent {
    let start = if matches!(head.get(6), Some(2 | 3)) {
        12
    } else {
        10
    };
    let Some(prefix) = head.get(..start) else {
        return Extent::AtLeast(start);
    };
    let length = match prefix[8..] {
        [a, b] => usize::from(u16::from_le_bytes([a, b])),
        [a, b, c, d] => u32::from_le_bytes([a, b, c, d]) as usize,
        _ => 0,
    };
    let end = start.saturating_add(length);
    if head.len() < end {
        return Extent::AtLeast(end);
    }
    match declared(head, "") {
        Ok((header, needed, _)) => Extent::Total(header.data_offset.saturating_add(needed)),
        Err(_) => Extent::Total(head.len()),
    }
}

/// The header at the start of `bytes`, the bytes of data it declares (whether or not they
/// follow) and its dtype as written.
fn declared<'a>(bytes: &'a [u8], name: &str) -> Result<(Header, usize, &'a str)> {
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
    Ok((header, needed, descr))
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
    /// Reads and checks `path` (once, and no further than its header says: a pipe works).
    pub fn read(path: &Path) -> Result<Self> {
        Self::from_bytes(fsio::read_until(path, extent)?, &path.display().to_string())
    }

    /// Parses a whole file held in memory.
    pub fn from_bytes(mut bytes: Vec<u8>, name: &str) -> Result<Self> {
        let header = parse_header(&bytes, name)?;
        bytes.drain(..header.data_offset);
        Ok(Self {
            header,
            data: bytes,
            name: name.to_string(),
        })
    }

    /// The values as an f32 matrix `[rows, cols]` (1-D arrays become one column), row-major.
    pub fn to_matrix(&self) -> Result<Array2<f32>> {
        let (rows, cols) = self.header.matrix_shape(&self.name)?;
        let mut values = Vec::new();
        fsio::reserve(&mut values, rows * cols, &self.name)?;
        values.extend((0..rows * cols).map(|i| value(&self.data, &self.header, i) as f32));
        let shape = if self.header.fortran_order {
            (rows, cols).f()
        } else {
            (rows, cols).into_shape_with_order()
        };
        let array = Array2::from_shape_vec(shape, values).expect("the header's size was checked");
        Ok(if array.is_standard_layout() {
            array
        } else {
            array.as_standard_layout().into_owned()
        })
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

/// The header of a version-1 `.npy` file of dtype `descr` (`<f4`, `<i8`) and `shape`, C order,
/// padded with spaces so that the data starts at a multiple of 64 bytes, ending in a newline, as
/// NumPy writes it.
fn header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = match dims.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = MAGIC.len() + 4 + dict.len() + 1;
    let header_len = dict.len() + 1 + (64 - unpadded % 64) % 64;
    let mut out = Vec::with_capacity(10 + header_len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(10 + header_len - 1, b' ');
    out.push(b'\n');
    out
}

/// A whole file: `header(descr, shape)` followed by `values`, each as its little-endian bytes.
fn file<const N: usize>(
    descr: &str,
    shape: &[usize],
    values: impl ExactSizeIterator<Item = [u8; N]>,
) -> Vec<u8> {
    let mut out = header(descr, shape);
    out.reserve(values.len() * N);
    for bytes in values {
        out.extend_from_slice(&bytes);
    }
    out
}

/// The bytes of a version-1 `.npy` file holding `array` as little-endian f32, C order.
pub fn to_bytes(array: &Array2<f32>) -> Vec<u8> {
    file(
        "<f4",
        &[array.nrows(), array.ncols()],
        array.iter().map(|v| v.to_le_bytes()),
    )
}

/// Writes `array` to `path` as a 2-D float32 `.npy` `(rows, cols)`, atomically.
pub fn write(path: &Path, array: &Array2<f32>) -> Result<()> {
    fsio::write_atomic(path, &to_bytes(array))
}

/// Writes `values` to `path` as a 1-D float32 `.npy` `(n,)`, atomically.
pub fn write_vector(path: &Path, values: &[f32]) -> Result<()> {
    let bytes = file(
        "<f4",
        &[values.len()],
        values.iter().map(|v| v.to_le_bytes()),
    );
    fsio::write_atomic(path, &bytes)
}

/// Writes `values` to `path` as a 1-D int64 `.npy` `(n,)` (class labels, as NumPy's default
/// integer), atomically.
pub fn write_int_vector(path: &Path, values: &[i64]) -> Result<()> {
    let bytes = file(
        "<i8",
        &[values.len()],
        values.iter().map(|v| v.to_le_bytes()),
    );
    fsio::write_atomic(path, &bytes)
}

/// Writes `array` to `path` as a 2-D int64 `.npy` `(rows, cols)`, C order, atomically.
pub fn write_int_matrix(path: &Path, array: &Array2<i64>) -> Result<()> {
    let bytes = file(
        "<i8",
        &[array.nrows(), array.ncols()],
        array.iter().map(|v| v.to_le_bytes()),
    );
    fsio::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_read_back_with_their_dtype_and_shape() {
        let dir = tempfile::tempdir().unwrap();
        let matrix = ndarray::array![[1.5f32, -2.0, 0.25], [3.0, 4.0, 5.0]];
        let labels = ndarray::array![[0i64, 1], [1, 0], [7, -3]];
        let path = |name: &str| dir.path().join(name);
        write(&path("m.npy"), &matrix).unwrap();
        write_vector(&path("v.npy"), &[0.5, -1.0, 1e-3]).unwrap();
        write_int_vector(&path("c.npy"), &[2, 0, 9, 1]).unwrap();
        write_int_matrix(&path("l.npy"), &labels).unwrap();
        let cases = [
            (
                "m.npy",
                DType::Float(4),
                vec![2, 3],
                vec![1.5, -2.0, 0.25, 3.0, 4.0, 5.0],
            ),
            (
                "v.npy",
                DType::Float(4),
                vec![3],
                vec![0.5, -1.0, f64::from(1e-3f32)],
            ),
            ("c.npy", DType::Int(8), vec![4], vec![2.0, 0.0, 9.0, 1.0]),
            (
                "l.npy",
                DType::Int(8),
                vec![3, 2],
                vec![0.0, 1.0, 1.0, 0.0, 7.0, -3.0],
            ),
        ];
        for (name, dtype, shape, values) in cases {
            let bytes = std::fs::read(path(name)).unwrap();
            let npy = Npy::from_bytes(bytes, name).unwrap();
            assert_eq!(npy.header.dtype, dtype, "{name}");
            assert_eq!(npy.header.shape, shape, "{name}");
            assert!(
                !npy.header.fortran_order && !npy.header.big_endian,
                "{name}"
            );
            assert_eq!(
                npy.header.data_offset % 64,
                0,
                "{name}: data aligned to 64 bytes"
            );
            let read: Vec<f64> = (0..values.len())
                .map(|i| value(&npy.data, &npy.header, i))
                .collect();
            assert_eq!(read, values, "{name}");
            assert_eq!(npy.data.len(), values.len() * dtype.size(), "{name}");
        }
    }
}
