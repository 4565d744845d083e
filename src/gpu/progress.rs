//! What a context reports while it does slow one-off work (compiling kernels, timing matmul
//! tiles), and the flag that asks that work to stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// An event of the slow work a context does on first use, for a progress display.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Progress {
    /// The shader modules are being compiled for this device (once per context).
    Compiling,
    /// Autotuning is about to time the candidate tiles of new product `index` (from 1) of
    /// `total`, described as `784x512 by 512x64` (op(A) by op(B)), with ` (4 models)` for a pack.
    Tuning {
        /// Which product, from 1.
        index: usize,
        /// New products to time in this batch.
        total: usize,
        /// The product's shape.
        product: String,
    },
    /// Autotuning timed `total` new products in `seconds`.
    Tuned {
        /// Products timed.
        total: usize,
        /// Seconds it took.
        seconds: f64,
    },
}

/// A callback for [`Progress`] events, shared by every clone of the context it is given to.
#[derive(Clone)]
pub struct OnProgress(Arc<dyn Fn(&Progress) + Send + Sync>);

impl OnProgress {
    /// Calls `report` with each event.
    pub fn new(report: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        Self(Arc::new(report))
    }

    /// Reports `event`.
    pub fn report(&self, event: &Progress) {
        (self.0)(event);
    }
}

impl std::fmt::Debug for OnProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnProgress(..)")
    }
}

/// A flag that asks a context's slow work to stop: once set, autotuning (and so building an
/// engine that tunes) returns [`Error::Cancelled`] at its next check, between the timed runs of
/// a candidate tile, instead of going on. Any non-zero value counts as set, so a signal
/// handler's record of the signal it received can be shared as it is.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicUsize>);

impl Cancel {
    /// A flag, not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A flag that is set whenever `flag` holds a non-zero value.
    pub fn from_flag(flag: Arc<AtomicUsize>) -> Self {
        Self(flag)
    }

    /// Sets the flag.
    pub fn cancel(&self) {
        self.0.store(1, Ordering::SeqCst);
    }

    /// Whether the flag is set.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst) != 0
    }

    /// [`Error::Cancelled`] naming `during` when the flag is set.
    pub(crate) fn check(&self, during: &str) -> Result<()> {
        if self.is_cancelled() {
            return Err(Error::Cancelled {
                during: during.to_string(),
            });
        }
        Ok(())
    }
}
