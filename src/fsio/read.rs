//! Reading input files, with errors that name the path.

use std::path::Path;

use crate::error::{Error, Result};

/// The whole file.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        action: "could not read",
        path: path.display().to_string(),
        source,
    })
}
