//! MNIST's IDX format (images and labels), raw or gzip-compressed. The header is read first and
//! the data is decompressed only up to the size the header claims, so a bad header cannot make
//! downhill allocate more than the data warrants.

use std::io::Read;
use std::path::Path;

use ndarray::Array2;

use crate::error::{Error, Result};

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

/// Reads `path`, decompressing it when it starts with the gzip magic.
pub fn read(path: &Path) -> Result<Idx> {
    parse(&crate::fsio::read(path)?, &path.display().to_string())
}

/// Parses IDX bytes (raw or gzip).
pub fn parse(bytes: &[u8], name: &str) -> Result<Idx> {
    let gzip = bytes.starts_with(&[0x1f, 0x8b]);
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
    let size = match magic[2] {
        0x08 | 0x09 => 1,
        0x0B => 2,
        0x0C | 0x0D => 4,
        0x0E => 8,
        t => return Err(bad(name, format!("has unknown IDX element type 0x{t:02x}"))),
    };
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
    // Raw data must already be there; compressed data expands at most ~1032x (deflate's limit).
    let available = if gzip {
        bytes.len().saturating_mul(1032)
    } else {
        bytes.len()
    };
    if count * size > available {
        return Err(bad(
            name,
            format!(
                "is truncated: dimensions {dims:?} need {} bytes of data",
                count * size
            ),
        ));
    }
    let mut data = Vec::with_capacity(count * size);
    reader
        .by_ref()
        .take((count * size) as u64)
        .read_to_end(&mut data)
        .map_err(fail)?;
    if data.len() < count * size {
        return Err(bad(
            name,
            format!(
                "is truncated: dimensions {dims:?} need {} bytes of data but it has {}",
                count * size,
                data.len()
            ),
        ));
    }
    let values = data
        .chunks_exact(size)
        .map(|c| match (magic[2], c) {
            (0x08, [b]) => f32::from(*b),
            (0x09, [b]) => f32::from(*b as i8),
            (0x0B, [a, b]) => f32::from(i16::from_be_bytes([*a, *b])),
            (0x0C, [a, b, c, d]) => i32::from_be_bytes([*a, *b, *c, *d]) as f32,
            (0x0D, [a, b, c, d]) => f32::from_be_bytes([*a, *b, *c, *d]),
            (_, c) => f64::from_be_bytes(c.try_into().expect("8 bytes")) as f32,
        })
        .collect();
    Ok(Idx { dims, values })
}

impl Idx {
    /// Images as features: one row per item, the remaining dimensions flattened.
    pub fn to_matrix(&self) -> Array2<f32> {
        let rows = self.dims[0];
        let cols = self.dims[1..].iter().product::<usize>();
        Array2::from_shape_vec((rows, cols), self.values.clone()).expect("dims match values")
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
