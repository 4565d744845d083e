//! `--metrics FILE`: one JSON line per record, the whole log rewritten atomically at each record,
//! so the file is always whole. A failed write (a full disk) is reported once as a warning and
//! tried again at the next record; training goes on, and only the last attempt's failure stands.

use std::path::PathBuf;

use downhill::Error;

use crate::cli::output::errln;

/// The JSON lines written so far and where they go.
pub struct MetricsLog {
    path: Option<PathBuf>,
    lines: Vec<String>,
    failure: Option<Error>,
}

impl MetricsLog {
    /// A log written to `path`, or kept nowhere when `None`.
    pub fn new(path: Option<PathBuf>) -> Self {
        Self {
            path,
            lines: Vec::new(),
            failure: None,
        }
    }

    /// Adds `lines` and rewrites the file.
    pub fn extend(&mut self, lines: impl IntoIterator<Item = String>) {
        self.lines.extend(lines);
        let Some(path) = &self.path else {
            return;
        };
        match downhill::fsio::write_atomic(path, (self.lines.join("\n") + "\n").as_bytes()) {
            Ok(()) => self.failure = None,
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
