//! Stopping cleanly on SIGINT (Ctrl-C), SIGTERM or SIGHUP (a closed terminal or ssh session).
//!
//! While data loads and the engine is built, nothing has been trained, so a signal ends the
//! process at once with the conventional status. Once training has started, the first signal is
//! recorded for the training loop to notice after its current step (it then writes the training
//! state and exits); a second one says that the run is stopping and still waits for that state to
//! be whole; a third ends the process at once, saying that the state was not written (the
//! previous one, written atomically, is intact). Once training is over and its outputs are being
//! written, a signal says so and a second one ends the process at once (every file written is
//! whole; a write blocked on a FIFO that nobody reads is abandoned).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cli::output::errln;

/// The signal that asked training to stop, if any arrived.
#[derive(Clone)]
pub struct StopSignal {
    received: Arc<AtomicUsize>,
    /// [`LOADING`], [`TRAINING`] or [`FINISHING`].
    phase: Arc<AtomicUsize>,
    /// Signals received since the run began finishing.
    while_finishing: Arc<AtomicUsize>,
    /// Whether a stop writes a training state (train does; a sweep keeps none).
    writes_state: bool,
}

/// Data loads and the engine is built: nothing to save.
const LOADING: usize = 0;
/// Steps run: a signal stops after the current one, with the training state written.
const TRAINING: usize = 1;
/// Training is over and its outputs are being written.
const FINISHING: usize = 2;

impl StopSignal {
    /// Starts the thread that handles the signals (`writes_state`: whether a stop writes a
    /// training state, for what the messages say). Returns a description of what failed when the
    /// handlers could not be installed (the run then cannot stop cleanly, but can still train).
    pub fn install(writes_state: bool) -> (Self, Option<std::io::Error>) {
        let stop = Self {
            received: Arc::new(AtomicUsize::new(0)),
            phase: Arc::new(AtomicUsize::new(LOADING)),
            while_finishing: Arc::new(AtomicUsize::new(0)),
            writes_state,
        };
        let mut signals = match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            Ok(s) => s,
            Err(e) => return (stop, Some(e)),
        };
        let handler = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for (count, signal) in signals.forever().enumerate() {
                    handler.handle(signal as usize, count + 1);
                }
            });
        (stop, spawned.err())
    }

    /// From now on a signal stops training after the current step instead of ending the process.
    pub fn training_started(&self) {
        self.phase.store(TRAINING, Ordering::SeqCst);
    }

    /// Training is over: a signal now says that the outputs are being written, and a second one
    /// ends the process without those not yet written.
    pub fn finishing(&self) {
        self.phase.store(FINISHING, Ordering::SeqCst);
    }

    /// Where the signal that asks training to stop is recorded (0 until one is), for library
    /// work that checks it (autotuning's cancel flag).
    pub fn flag(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.received)
    }

    /// The signal number received, if any.
    pub fn received(&self) -> Option<usize> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }

    /// What the `count`-th signal does.
    fn handle(&self, signal: usize, count: usize) {
        match self.phase.load(Ordering::SeqCst) {
            LOADING => {
                errln!(
                    "interrupted by {} before training started; nothing was trained or written",
                    name(signal)
                );
                signal_hook::low_level::exit(exit_status(signal).into());
            }
            FINISHING => {
                if self.while_finishing.fetch_add(1, Ordering::SeqCst) == 0 {
                    errln!(
                        "{}: training is over and its outputs are being written; another signal \
                         exits at once, without those not yet written",
                        name(signal)
                    );
                } else {
                    errln!(
                        "{}: exiting at once; outputs not yet written are lost, and those written \
                         are whole",
                        name(signal)
                    );
                    signal_hook::low_level::exit(exit_status(signal).into());
                }
                return;
            }
            _ => {}
        }
        match count {
            1 => {
                let _ =
                    self.received
                        .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
            }
            2 if self.writes_state => errln!(
                "{} again: stopping once the training state is written; a third signal exits at \
                 once without it",
                name(signal)
            ),
            2 => errln!(
                "{} again: stopping after the current step with the results so far; a third \
                 signal exits at once without them",
                name(signal)
            ),
            _ => {
                if self.writes_state {
                    errln!(
                        "{}: exiting at once; the training state of this stop was not written (a \
                         training state written earlier is intact)",
                        name(signal)
                    );
                } else {
                    errln!(
                        "{}: exiting at once; the results of this run are not reported",
                        name(signal)
                    );
                }
                signal_hook::low_level::exit(exit_status(signal).into());
            }
        }
    }
}

/// The shell's convention for a process ended by `signal`: 128 + its number (129 for SIGHUP, 130
/// for SIGINT, 143 for SIGTERM).
pub fn exit_status(signal: usize) -> u8 {
    u8::try_from(128 + signal).unwrap_or(u8::MAX)
}

/// The signal's name, for messages.
pub fn name(signal: usize) -> &'static str {
    match signal as i32 {
        SIGHUP => "SIGHUP",
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
