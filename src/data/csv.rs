//! CSV files: an optional header, the target column(s) chosen by name or index, the rest features.

use std::path::Path;

use ndarray::Array2;

use crate::error::{Error, Result};
use crate::fsio::Extent;

/// A column chosen by its header name or by its 0-based index (negative counts from the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// By header name.
    Name(String),
    /// By position; `-1` is the last column.
    Index(i64),
}

impl std::str::FromStr for Column {
    type Err = std::convert::Infallible;

    /// An integer is an index; anything else is a name.
    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        Ok(match text.trim().parse::<i64>() {
            Ok(i) => Column::Index(i),
            Err(_) => Column::Name(text.trim().to_string()),
        })
    }
}

/// How to read a CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvOptions {
    /// `Some(true)`: the first row is a header; `Some(false)`: it is data; `None`: a header
    /// when any of its cells is not a number.
    pub header: Option<bool>,
    /// The target columns (default: the last column).
    pub targets: Vec<Column>,
    /// Skip rows holding NaN or infinite values instead of refusing the file.
    pub drop_nonfinite: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            header: None,
            targets: vec![Column::Index(-1)],
            drop_nonfinite: false,
        }
    }
}

/// Features and raw target values read from a CSV file.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvData {
    /// `[rows, features]`.
    pub features: Array2<f32>,
    /// `[rows, target columns]`.
    pub targets: Array2<f32>,
    /// Names of the feature columns (`column 3` without a header).
    pub feature_names: Vec<String>,
    /// Rows skipped for non-finite values.
    pub dropped: usize,
}

fn bad(name: &str, message: impl Into<String>) -> Error {
    Error::Data {
        source_name: name.to_string(),
        message: message.into(),
    }
}

/// Bytes looked at before a CSV input is read to its end: a NUL among them means it is not text
/// (a binary file, or a device such as `/dev/zero` that would never end).
const TEXT_PROBE: usize = 64 * 1024;

/// Reads `path` as CSV.
pub fn read(path: &Path, options: &CsvOptions) -> Result<CsvData> {
    let name = path.display().to_string();
    let bytes = crate::fsio::read_until(path, |read| {
        if read.is_empty() {
            Extent::AtLeast(TEXT_PROBE)
        } else if read.contains(&0) {
            Extent::Total(read.len())
        } else {
            Extent::ToEnd
        }
    })?;
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(bad(
            &name,
            format!("holds a NUL byte at offset {at}: it is not CSV text; give a text file"),
        ));
    }
    parse(&bytes, &name, options)
}

/// Parses CSV text held in memory (`name` is used in messages).
pub fn parse(bytes: &[u8], name: &str, options: &CsvOptions) -> Result<CsvData> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let mut records = reader.records();
    let first = match records.next() {
        None => {
            return Err(bad(
                name,
                "is empty: a CSV file needs at least one row of numbers",
            ));
        }
        Some(r) => r.map_err(|e| bad(name, format!("line 1: {e}")))?,
    };
    let width = first.len();
    let has_header = options
        .header
        .unwrap_or_else(|| first.iter().any(|cell| cell.parse::<f64>().is_err()));
    let names: Vec<String> = if has_header {
        first.iter().map(str::to_string).collect()
    } else {
        (0..width).map(|i| format!("column {i}")).collect()
    };
    let mut target_columns = Vec::new();
    for column in &options.targets {
        let index = match column {
            Column::Name(n) => names.iter().position(|h| h == n).ok_or_else(|| {
                let hint = if has_header {
                    format!("columns are {names:?}")
                } else {
                    "the file has no header row: choose the column by index".into()
                };
                bad(name, format!("has no target column named `{n}`; {hint}"))
            })?,
            Column::Index(i) => {
                let resolved = if *i < 0 { width as i64 + i } else { *i };
                usize::try_from(resolved)
                    .ok()
                    .filter(|&r| r < width)
                    .ok_or_else(|| {
                        bad(
                            name,
                            format!(
                                "has no target column {i}: rows have {width} columns (0..{})",
                                width - 1
                            ),
                        )
                    })?
            }
        };
        if !target_columns.contains(&index) {
            target_columns.push(index);
        }
    }
    if target_columns.len() >= width {
        return Err(bad(
            name,
            "leaves no feature columns: every column is a target",
        ));
    }
    let feature_columns: Vec<usize> = (0..width).filter(|c| !target_columns.contains(c)).collect();

    let mut features = Vec::new();
    let mut targets = Vec::new();
    let mut rows = 0;
    let mut dropped = 0;
    let data_rows = (!has_header)
        .then_some(Ok(first))
        .into_iter()
        .chain(records);
    for (i, record) in data_rows.enumerate() {
        let line = i + 1 + usize::from(has_header);
        let record = record.map_err(|e| bad(name, format!("line {line}: {e}")))?;
        if record.len() == 1 && record[0].is_empty() {
            continue;
        }
        if record.len() != width {
            return Err(bad(
                name,
                format!(
                    "line {line} has {} columns but the first row has {width}; every row needs the same number",
                    record.len()
                ),
            ));
        }
        let mut values = Vec::with_capacity(width);
        let mut finite = true;
        for (c, cell) in record.iter().enumerate() {
            let v: f64 = cell.parse().map_err(|_| {
                bad(
                    name,
                    format!(
                        "line {line}, column {} (`{}`): `{cell}` is not a number",
                        c + 1,
                        names[c]
                    ),
                )
            })?;
            if !v.is_finite() {
                if !options.drop_nonfinite {
                    return Err(bad(
                        name,
                        format!(
                            "line {line}, column {} (`{}`): {cell} is not finite; fix the file or \
                             pass --drop-nonfinite to skip such rows",
                            c + 1,
                            names[c]
                        ),
                    ));
                }
                finite = false;
            }
            values.push(v as f32);
        }
        if !finite {
            dropped += 1;
            continue;
        }
        features.extend(feature_columns.iter().map(|&c| values[c]));
        targets.extend(target_columns.iter().map(|&c| values[c]));
        rows += 1;
    }
    if rows == 0 {
        return Err(bad(
            name,
            if dropped > 0 {
                format!("has no rows left: all {dropped} held NaN or infinite values")
            } else {
                "has a header but no data rows".to_string()
            },
        ));
    }
    Ok(CsvData {
        features: Array2::from_shape_vec((rows, feature_columns.len()), features)
            .expect("rows x features values"),
        targets: Array2::from_shape_vec((rows, target_columns.len()), targets)
            .expect("rows x targets values"),
        feature_names: feature_columns.iter().map(|&c| names[c].clone()).collect(),
        dropped,
    })
}
