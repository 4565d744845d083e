//! What preparation decides on its own and tells the caller, as it decides it.

use std::path::PathBuf;

use crate::data::task::Inferred;

/// A decision [`prepare`](super::prepare) made that the request did not spell out, or rows it
/// skipped: passed to its `on_note` as it happens, for the caller to say (or not).
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// No data was named: the built-in default run, on the `digits` dataset (1,797 8x8 images,
    /// 10 classes), standardised, with 20% of the rows held out for validation.
    DefaultRun,
    /// The features file is larger than half the memory available, so it is memory-mapped and
    /// its batches streamed from disk.
    MemoryMapped {
        /// The features file.
        path: PathBuf,
        /// Its size in bytes.
        bytes: u64,
    },
    /// Rows holding NaN or infinite values were skipped, as the data's spec asked.
    RowsDropped {
        /// The data's name (its features or CSV file).
        source: String,
        /// Rows skipped.
        dropped: usize,
        /// Rows kept.
        kept: usize,
    },
    /// The targets, one column of whole numbers, were taken as class labels: classification
    /// with cross-entropy.
    Classes(Inferred),
}
