//! `--metrics FILE`: one JSON line per record. A file is rewritten whole and atomically at each
//! record, so it is always whole; a device or FIFO (`/dev/stdout`, a pipe) receives each record's
//! lines once, as they come. A failed write (a full disk) is reported once as a warning and tried
//! again at the next record; training goes on, and only the last attempt's failure stands.

use std::path::PathBuf;

use downhill::Error;

use crate::cli::output::errln;

/// The JSON lines written so far and where they go.
pub struct MetricsLog {
    path: Option<PathBuf>,
    lines: Vec<String>,
    /// Lines already written, when the path is a stream that takes only new ones.
    streamed: Option<usize>,
    failure: Option<Error>,
}

impl MetricsLog {
    /// A log written to `path`, or kept nowhere when `None`.
    pub fn new(path: Option<PathBuf>) -> Self {
        let streamed = path
            .as_deref()
            .is_some_and(downhill::fsio::is_stream)
            .then_some(0);
        Self {
            path,
            lines: Vec::new(),
            streamed,
            failure: None,
        }
    }

    /// A log that continues a resumed run: the lines a file already holds for steps up to `step`
    /// are kept, so that the log covers the whole run (a device or FIFO keeps nothing).
    pub fn resumed(path: Option<PathBuf>, step: u64) -> Self {
        let mut log = Self::new(path);
        if log.streamed.is_none()
            && let Some(text) = log
                .path
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
        {
            log.lines = text
                .lines()
                .filter(|line| {
                    serde_json::from_str::<serde_json::Value>(line)
                        .ok()
                        .and_then(|v| v["step"].as_u64())
                        .is_some_and(|s| s <= step)
                })
                .map(String::from)
                .collect();
        }
        log
    }

    /// Adds `lines` and rewrites the file.
    pub fn extend(&mut self, lines: impl IntoIterator<Item = String>) {
        self.lines.extend(lines);
        let Some(path) = &self.path else {
            return;
        };
        let from = self.streamed.unwrap_or(0);
        let text = self.lines[from..].join("\n") + "\n";
        match downhill::fsio::write_atomic(path, text.as_bytes()) {
            Ok(()) => {
                self.failure = None;
                if let Some(written) = &mut self.streamed {
                    *written = self.lines.len();
                }
            }
            Err(e) => {
                if self.failure.is_none() {
                    errln!(
                        "warning: {e}; training goes on, and the log is tried again at the next \
                         record"
                    );
                }
                self.failure = Some(e);
            }
        }
    }

    /// Why the last write failed, if it did.
    pub fn take_failure(&mut self) -> Option<Error> {
        self.failure.take()
    }
}
