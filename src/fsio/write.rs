//! Writing output files. A regular file (or a path that names nothing yet) is written atomically:
//! a temporary file in the same folder, flushed, then renamed over the target, and the folder
//! flushed, so a crash never leaves a torn file. A symbolic link is followed and its target
//! replaced, the link kept. A character device or a FIFO is written straight into. Anything else
//! is refused.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::target::{Target, folder_of, resolve};
use crate::error::{Error, Result};

/// Writes `bytes` to `path`: readers of a file see the old contents or the new, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    match resolve(path)? {
        Target::File(file) => replace(&file, bytes).map_err(|source| Error::Io {
            action: "could not write",
            path: path.display().to_string(),
            source,
        }),
        Target::Stream(stream) => write_stream(&stream, bytes),
    }
}

/// The name of the temporary files that writing `target` makes: `.NAME.XXXXXX.tmp`, named after
/// the target so that one left by a killed process says what it was.
pub(crate) fn temporary_prefix(target: &Path) -> String {
    let name = target
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    format!(".{name}.")
}

/// The suffix of [`temporary_prefix`]'s files.
pub(crate) const TEMPORARY_SUFFIX: &str = ".tmp";

/// Writes a temporary file beside `file` and renames it over `file`.
fn replace(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = folder_of(file);
    let mut builder = tempfile::Builder::new();
    let prefix = temporary_prefix(file);
    builder.prefix(&prefix).suffix(TEMPORARY_SUFFIX);
    // Like a file made by `File::create` (0666 less the umask), not tempfile's private 0600.
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut temporary = builder.tempfile_in(dir)?;
    temporary.write_all(bytes)?;
    temporary.as_file().sync_all()?;
    temporary.persist(file).map_err(|e| e.error)?;
    // Make the rename itself durable (a crash of the machine, not only of the process). Some
    // file systems cannot sync a folder; the file is whole by then either way, so that is not
    // reported as a failure.
    let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    Ok(())
}

/// Writes into a character device or a FIFO as it is. A FIFO that no process reads is an error
/// rather than a wait without end.
fn write_stream(stream: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source: std::io::Error| {
        let fifo_unread = source.raw_os_error() == Some(libc::ENXIO);
        Error::Io {
            action: if fifo_unread {
                "no process is reading the FIFO"
            } else {
                "could not write"
            },
            path: stream.display().to_string(),
            source,
        }
    };
    // Non-blocking to open (a FIFO without a reader fails with ENXIO at once), blocking to write.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(stream)
        .map_err(io)?;
    set_blocking(&file).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.flush().map_err(io)
}

/// Clears `O_NONBLOCK` on an open file.
fn set_blocking(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns and keeps open.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above; only the status flags change.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
