//! Checking an output path before any work that it would hold the result of, so that a run never
//! trains for hours and then fails to save; and clearing the temporary files that an earlier
//! process, killed while writing the same target, left behind.

use std::path::Path;

use super::target::{Target, folder_of, resolve};
use super::write::{TEMPORARY_SUFFIX, temporary_prefix};
use crate::error::{Error, Result};

/// Checks that [`super::write_atomic`] can write `path` (given with the option `flag`, for the
/// message): it names a regular file, a file not yet made, a symbolic link to either, a
/// character device or a FIFO; and a file's folder exists and takes new files. Removes the
/// target's stale temporary files (`.NAME.XXXXXX.tmp`) on the way.
pub fn check_output(path: &Path, flag: &str) -> Result<()> {
    let target = resolve(path).map_err(|e| match e {
        Error::Usage(message) => Error::Usage(format!("{flag} {message}")),
        other => other,
    })?;
    let Target::File(file) = target else {
        return Ok(());
    };
    let folder = folder_of(&file);
    match std::fs::metadata(folder) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::Usage(format!(
                "{flag} {}: {} is not a folder; give a path in an existing folder",
                path.display(),
                folder.display()
            )));
        }
        Err(_) => {
            return Err(Error::Usage(format!(
                "{flag} {}: the folder {} does not exist; create it first (mkdir -p {})",
                path.display(),
                folder.display(),
                folder.display()
            )));
        }
    }
    // A real file made and removed: the only test that sees read-only file systems, permissions
    // and quotas as the write will.
    tempfile::Builder::new()
        .prefix(&temporary_prefix(&file))
        .suffix(TEMPORARY_SUFFIX)
        .tempfile_in(folder)
        .map_err(|e| {
            Error::Usage(format!(
                "{flag} {}: cannot create files in {}: {}",
                path.display(),
                folder.display(),
                e
            ))
        })?;
    remove_stale_temporaries(&file);
    Ok(())
}

/// Removes the temporary files of `file` (`.NAME.XXXXXX.tmp`) that a process killed while
/// writing it left behind. Call it before this process writes `file` at all, so that none of
/// them is its own. Failures are ignored: a stale file that cannot be removed costs nothing but
/// space.
pub fn remove_stale_temporaries(file: &Path) {
    let prefix = temporary_prefix(file);
    let Ok(entries) = std::fs::read_dir(folder_of(file)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let stale = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(TEMPORARY_SUFFIX))
            .is_some_and(|random| {
                !random.is_empty() && random.chars().all(|c| c.is_ascii_alphanumeric())
            });
        if stale && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
