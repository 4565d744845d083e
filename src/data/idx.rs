//! MNIST's IDX format (images and labels), raw or gzip-compressed. The header is read first and
//! the data is decompressed only up to the size the header claims, and the memory its values take
//! is checked against what is available before it is taken, so a bad header cannot make downhill
//! allocate more than the data warrants.

use std::io::Read;
use std::path::Path;

use ndarray::Array2;

use crate::error::{Error, Result};
use crate::fsio::Extent;

/// An IDX array: its dimensions and its values as f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Idx {
    /// Dimensions, outermost first (`[n, 28, 28]` for MNIST images).
    pub dims: Vec<usize>,
    /// Values in row-major order.
    pub values: Vec<f32>,
}

fn bad(name: &str, message: impl Into<String>) -> Error {
    Error::Data {
        source_name: name.to_string(),
        message: message.into(),
    }
}

/// The first bytes of a gzip stream.
const GZIP: [u8; 2] = [0x1f, 0x8b];

/// Bytes of data decoded at a time.
const CHUNK: usize = 1 << 16;

/// Bytes per element of IDX element type `kind`, or `None` for an unknown type.
fn element_size(kind: u8) -> Option<usize> {
    match kind {
        0x08 | 0x09 => Some(1),
        0x0B => Some(2),
        0x0C | 0x0D => Some(4),
        0x0E => Some(8),
        _ => None,
    }
}

/// Reads `path` (once, and no further than its header says: a pipe works), decompressing it
/// when it starts with the gzip magic.
pub fn read(path: &Path) -> Result<Idx> {
    parse(
        &crate::fsio::read_until(path, extent)?,
        &path.display().to_string(),
    )
}

/// How much of an IDX input to read, judged from its first bytes: a raw file's header, then the
/// data its dimensions declare and no more; a gzip file whole (its data is bounded when it is
/// decompressed). Whatever is wrong with the header stops the reading, for [`parse`] to report.
pub fn extent(head: &[u8]) -> Extent {
    if head.starts_with(&GZIP) {
        return Extent::ToEnd;
    }
    let [_, _, kind, ndims, ..] = *head else {
        return Extent::AtLeast(4);
    };
    let end = 4 + 4 * usize::from(ndims);
    let Some(dims) = head.get(4..end) else {
        return Extent::AtLeast(end);
    };
    element_size(kind)
        .and_then(|size| {
            dims.chunks_exact(4)
                .map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize)
                .try_fold(size, |acc, d| acc.checked_mul(d))
        })
        .and_then(|data| data.checked_add(end))
        .map_or(Extent::Total(head.len()), Extent::Total)
}

/// Parses IDX bytes (raw or gzip). The data is decompressed and decoded piece by piece, no
/// further than the dimensions declare, and the values' memory is checked before it is taken.
pub fn parse(bytes: &[u8], name: &str) -> Result<Idx> {
    let gzip = bytes.starts_with(&GZIP);
    let mut reader: Box<dyn Read + '_> = if gzip {
        Box::new(flate2::read::GzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let fail = |e: std::io::Error| {
        bad(
            name,
            format!("could not be read ({e}); is it a complete IDX file?"),
        )
    };
    let mut magic = [0u8; 4];
    reader
        .read_exact(&mut magic)
        .map_err(|_| bad(name, "is too short to be an IDX file"))?;
    if magic[0] != 0 || magic[1] != 0 {
        return Err(bad(
            name,
            "is not an IDX file (its first two bytes are not zero)",
        ));
    }
    let size = element_size(magic[2]).ok_or_else(|| {
        bad(
            name,
            format!("has unknown IDX element type 0x{:02x}", magic[2]),
        )
    })?;
    let ndims = usize::from(magic[3]);
    if ndims == 0 {
        return Err(bad(name, "declares zero dimensions"));
    }
    let mut dims = Vec::with_capacity(ndims);
    for _ in 0..ndims {
        let mut d = [0u8; 4];
        reader
            .read_exact(&mut d)
            .map_err(|_| bad(name, "is truncated inside its dimensions"))?;
        dims.push(u32::from_be_bytes(d) as usize);
    }
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|_| super::addressable(&dims, size))
        .ok_or_else(|| bad(name, format!("claims impossible dimensions {dims:?}")))?;
    let needed = count * size;
    // Raw data must already be there; compressed data expands at most ~1032x (deflate's limit).
    let available = if gzip {
        bytes.len().saturating_mul(1032)
    } else {
        bytes.len()
    };
    if needed > available {
        return Err(bad(
            name,
            format!("is truncated: dimensions {dims:?} need {needed} bytes of data"),
        ));
    }
    let mut values = Vec::new();
    crate::fsio::reserve(&mut values, count, name)?;
    let mut chunk = Vec::with_capacity(CHUNK.min(needed));
    let mut read = 0;
    while read < needed {
        chunk.clear();
        let want = (needed - read).min(CHUNK);
        let got = reader
            .by_ref()
            .take(want as u64)
            .read_to_end(&mut chunk)
            .map_err(fail)?;
        read += got;
        if got < want {
            return Err(bad(
                name,
                format!(
                    "is truncated: dimensions {dims:?} need {needed} bytes of data but it has \
                     {read}"
                ),
            ));
        }
        values.extend(chunk.chunks_exact(size).map(|c| decode(magic[2], c)));
    }
    Ok(Idx { dims, values })
}

/// One big-endian element of IDX element type `kind` (its bytes are the type's size).
fn decode(kind: u8, bytes: &[u8]) -> f32 {
    match (kind, bytes) {
        (0x08, [b]) => f32::from(*b),
        (0x09, [b]) => f32::from(*b as i8),
        (0x0B, [a, b]) => f32::from(i16::from_be_bytes([*a, *b])),
        (0x0C, [a, b, c, d]) => i32::from_be_bytes([*a, *b, *c, *d]) as f32,
        (0x0D, [a, b, c, d]) => f32::from_be_bytes([*a, *b, *c, *d]),
        (_, c) => f64::from_be_bytes(c.try_into().expect("8 bytes")) as f32,
    }
}

impl Idx {
    /// Images as features: one row per item, the remaining dimensions flattened.
    pub fn to_matrix(&self) -> Array2<f32> {
        self.clone().into_matrix()
    }

    /// [`Idx::to_matrix`] without copying the values.
    pub fn into_matrix(self) -> Array2<f32> {
        let rows = self.dims[0];
        let cols = self.dims[1..].iter().product::<usize>();
        Array2::from_shape_vec((rows, cols), self.values).expect("dims match values")
    }

    /// Labels as class indices; they must be one-dimensional non-negative integers.
    pub fn to_classes(&self, name: &str) -> Result<Vec<u32>> {
        if self.dims.len() != 1 {
            return Err(bad(
                name,
                format!(
                    "labels must be one-dimensional, this file has dimensions {:?}",
                    self.dims
                ),
            ));
        }
        self.values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                if v < 0.0 || v.fract() != 0.0 {
                    Err(bad(
                        name,
                        format!("item {i}: label {v} is not a class index"),
                    ))
                } else {
                    Ok(v as u32)
                }
            })
            .collect()
    }
}
