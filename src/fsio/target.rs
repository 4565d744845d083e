//! What an output path names once symbolic links are followed: nothing yet, a regular file, a
//! stream (a character device or a FIFO), or something downhill must not replace.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Symbolic links followed at most, as the kernel's own limit (`ELOOP`).
const MAX_LINKS: usize = 40;

/// Where the bytes for an output path go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A regular file at this path (the link's target when the path was a link), or nothing yet:
    /// written to a temporary file beside it and renamed over it.
    File(PathBuf),
    /// A character device or a FIFO: written straight into, never replaced.
    Stream(PathBuf),
}

/// The folder a file is (or will be) in; `.` for a bare file name.
pub(crate) fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// What `path` names, following symbolic links (a dangling link names the file it points to).
/// A folder, a block device or a socket is refused: downhill writes files, and never replaces
/// something that is not one.
pub(crate) fn resolve(path: &Path) -> Result<Target> {
    let io = |source| Error::Io {
        action: "could not inspect",
        path: path.display().to_string(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) => {
            let kind = meta.file_type();
            if kind.is_file() {
                // The link's target, so that the rename replaces the file and keeps the link.
                std::fs::canonicalize(path).map(Target::File).map_err(io)
            } else if kind.is_char_device() || kind.is_fifo() {
                Ok(Target::Stream(path.to_path_buf()))
            } else {
                let what = if kind.is_dir() {
                    "a folder"
                } else if kind.is_block_device() {
                    "a block device"
                } else if kind.is_socket() {
                    "a socket"
                } else {
                    "not a regular file"
                };
                Err(Error::Usage(format!(
                    "{} is {what}, which downhill does not write over; give the path of a file",
                    path.display()
                )))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => dangling(path).map(Target::File),
        Err(e) => Err(io(e)),
    }
}

/// The file that `path` will create: itself, or where its chain of (dangling) links ends.
fn dangling(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&current).map_err(|source| Error::Io {
                    action: "could not read the symbolic link",
                    path: current.display().to_string(),
                    source,
                })?;
                current = folder_of(&current).join(link);
            }
            _ => return Ok(current),
        }
    }
    Err(Error::Usage(format!(
        "{} is a chain of more than {MAX_LINKS} symbolic links (a loop?); give the path of a file",
        path.display()
    )))
}

/// Whether `path` names a character device or a FIFO (after following links), which a writer
/// appends to instead of replacing.
pub fn is_stream(path: &Path) -> bool {
    matches!(resolve(path), Ok(Target::Stream(_)))
}
