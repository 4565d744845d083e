//! Files: reading with errors that name the path, and writing atomically (a temporary file in
//! the same directory, flushed, then renamed over the target, and the directory flushed), so a
//! crash never leaves a torn file.

use std::io::Write;
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

/// Writes `bytes` to `path` atomically: readers see the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        action: "could not write",
        path: path.display().to_string(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Named after the target, so a temporary left by a killed process says what it was.
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // Like a file made by `File::create` (0666 less the umask), not tempfile's private 0600.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut file = builder.tempfile_in(dir).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.as_file().sync_all().map_err(io)?;
    file.persist(path).map_err(|e| io(e.error))?;
    // Make the rename itself durable (a crash of the machine, not only of the process). Some
    // file systems cannot sync a directory; the file is written whole by then either way, so
    // that is not reported as a failure.
    #[cfg(unix)]
    let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    Ok(())
}
