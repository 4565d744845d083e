//! TensorBoard event files: scalars that `tensorboard --logdir DIR` shows, one curve per tag
//! against the step, one run per folder.
//!
//! A file is named `events.out.tfevents.<seconds>.<host>.<pid>.<n>` and holds a sequence of
//! records (see [`record`]), each an `Event` protobuf (see [`proto`]): first one whose
//! `file_version` is `brain.Event:2`, then one per [`EventWriter::scalars`] call with its wall
//! time, step and a `Summary` of `Value { tag, simple_value }`.
//!
//! The file is append-only: it is created new (never replacing anything), and each record is
//! handed to the operating system in one write as soon as it is made, so a run killed at any
//! moment leaves every record logged before it whole (at most the record being written is cut,
//! which readers take as the end of the file).

pub mod proto;
pub mod record;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use crate::error::{Error, Result};
use proto::{Event, Kind, Summary, Value, What};
use record::frame;

/// The `file_version` of the first event of every file.
pub const FILE_VERSION: &str = "brain.Event:2";

/// Files this process has created, numbering them (the last part of the name).
static FILES_MADE: AtomicU64 = AtomicU64::new(0);

/// Appends events to one new event file.
#[derive(Debug)]
pub struct EventWriter {
    file: File,
    path: PathBuf,
}

impl EventWriter {
    /// Creates `dir` (and its parents) if needed and a new event file in it, and writes the
    /// `file_version` event.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            action: "could not create the TensorBoard folder",
            path: dir.display().to_string(),
            source,
        })?;
        let seconds = now().trunc() as u64;
        let (host, pid) = (hostname(), std::process::id());
        loop {
            let n = FILES_MADE.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(
                "events.out.tfevents.{seconds:010}.{host}.{pid}.{n}"
            ));
            // `create_new`: never opens, let alone truncates, a file that is already there.
            match File::options().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    let mut writer = Self { file, path };
                    writer.write(0, What::FileVersion(FILE_VERSION.into()))?;
                    return Ok(writer);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(source) => {
                    return Err(Error::Io {
                        action: "could not create the TensorBoard event file",
                        path: path.display().to_string(),
                        source,
                    });
                }
            }
        }
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event at `step` holding `values`, each `(tag, value)` as a `simple_value`
    /// (an f32, as TensorBoard stores scalars).
    pub fn scalars(&mut self, step: u64, values: &[(&str, f64)]) -> Result<()> {
        let value = values
            .iter()
            .map(|&(tag, v)| Value {
                tag: tag.to_string(),
                value: Some(Kind::SimpleValue(v as f32)),
            })
            .collect();
        self.write(step, What::Summary(Summary { value }))
    }

    /// Encodes and appends one event, in one write.
    fn write(&mut self, step: u64, what: What) -> Result<()> {
        let event = Event {
            wall_time: now(),
            step: i64::try_from(step).unwrap_or(i64::MAX),
            what: Some(what),
        };
        self.file
            .write_all(&frame(&event.encode_to_vec()))
            .and_then(|()| self.file.flush())
            .map_err(|source| Error::Io {
                action: "could not write the TensorBoard event file",
                path: self.path.display().to_string(),
                source,
            })
    }
}

/// Checks, before any work, that event files can be made in `dir` (given with the option
/// `flag`, for the message): it is a folder, or names nothing yet and is created (with its
/// parents) now, and it takes new files.
pub fn check_log_dir(dir: &Path, flag: &str) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => {
            return Err(Error::Usage(format!(
                "{flag} {}: this is a file, not a folder; give the folder that TensorBoard's \
                 event files should go to (it is created if it does not exist)",
                dir.display()
            )));
        }
        Ok(_) => {}
        Err(_) => std::fs::create_dir_all(dir).map_err(|e| {
            Error::Usage(format!(
                "{flag} {}: could not create this folder: {e}; give a folder you can write to",
                dir.display()
            ))
        })?,
    }
    // A real file made and removed: the only test that sees permissions and read-only file
    // systems as the writes will.
    tempfile::Builder::new()
        .prefix(".downhill-check.")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| {
            Error::Usage(format!(
                "{flag} {}: cannot create files in this folder: {}; give a folder you can write to",
                dir.display(),
                std::io::Error::from(e.kind())
            ))
        })
}

/// Seconds since the Unix epoch.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// This machine's host name, with anything but letters, digits, `-` and `.` replaced by `_` (it
/// becomes part of a file name); `localhost` when it cannot be had.
fn hostname() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most `buffer.len()` bytes into the buffer it is given.
    let status = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    let name: String = String::from_utf8_lossy(&buffer[..end])
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if status != 0 || name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::record::masked_crc;
    use super::*;

    /// The events of a file, decoded with prost, after checking every record's framing.
    fn read_events(path: &Path) -> Vec<Event> {
        let bytes = std::fs::read(path).unwrap();
        let mut events = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let length: [u8; 8] = rest[..8].try_into().unwrap();
            assert_eq!(rest[8..12], masked_crc(&length).to_le_bytes());
            let n = u64::from_le_bytes(length) as usize;
            let data = &rest[12..12 + n];
            assert_eq!(rest[12 + n..16 + n], masked_crc(data).to_le_bytes());
            events.push(Event::decode(data).unwrap());
            rest = &rest[16 + n..];
        }
        events
    }

    #[test]
    fn a_file_holds_the_version_then_one_event_per_call() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("a/b");
        let mut writer = EventWriter::create(&run).unwrap();
        writer
            .scalars(7, &[("loss/train", 0.5), ("learning_rate", 1e-3)])
            .unwrap();
        let name = writer.path().file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("events.out.tfevents."), "{name}");
        let events = read_events(writer.path());
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].what, Some(What::FileVersion(FILE_VERSION.into())));
        assert_eq!(events[1].step, 7);
        let Some(What::Summary(summary)) = &events[1].what else {
            panic!("no summary in {:?}", events[1]);
        };
        assert_eq!(summary.value[0].tag, "loss/train");
        assert_eq!(summary.value[1].value, Some(Kind::SimpleValue(1e-3)));
        // A second writer in the same folder makes a second file.
        let other = EventWriter::create(&run).unwrap();
        assert_ne!(other.path(), writer.path());
    }

    #[test]
    fn a_file_is_refused_as_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        let e = check_log_dir(&file, "--tensorboard")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a folder"), "{e}");
        check_log_dir(&dir.path().join("new/run"), "--tensorboard").unwrap();
        assert!(dir.path().join("new/run").is_dir());
    }
}
