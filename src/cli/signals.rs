//! Stopping training cleanly on SIGINT (Ctrl-C) or SIGTERM: the first signal is recorded for the
//! training loop to notice after its current step; a second one of either ends the process at
//! once with the conventional status.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::flag;

/// The signal that asked training to stop, if any arrived.
#[derive(Clone)]
pub struct StopSignal(Arc<AtomicUsize>);

impl StopSignal {
    /// Installs the handlers. Returns a description of what failed when the handlers could not
    /// be installed (the run then cannot stop cleanly, but can still train).
    pub fn install() -> (Self, Option<std::io::Error>) {
        let received = Arc::new(AtomicUsize::new(0));
        let pending = Arc::new(AtomicBool::new(false));
        let mut failure = None;
        for signal in [SIGINT, SIGTERM] {
            // Order matters: the shutdown check runs before the flag is set, so it only fires on
            // a second signal.
            let installed = flag::register_conditional_shutdown(
                signal,
                exit_status(signal as usize).into(),
                Arc::clone(&pending),
            )
            .and_then(|_| flag::register(signal, Arc::clone(&pending)))
            .and_then(|_| flag::register_usize(signal, Arc::clone(&received), signal as usize));
            if let Err(e) = installed {
                failure.get_or_insert(e);
            }
        }
        (Self(received), failure)
    }

    /// The signal number received, if any.
    pub fn received(&self) -> Option<usize> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }
}

/// The shell's convention for a process ended by `signal`: 128 + its number (130 for SIGINT,
/// 143 for SIGTERM).
pub fn exit_status(signal: usize) -> u8 {
    u8::try_from(128 + signal).unwrap_or(u8::MAX)
}

/// The signal's name, for messages.
pub fn name(signal: usize) -> &'static str {
    match signal as i32 {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
