//! A memory-mapped file that shrinks under the run makes the next read of a page past its new end
//! raise SIGBUS, which would end the process without a word. [`watch`] installs, once, a handler
//! that says so on stderr, naming the file, and exits with status 1 instead. Training-state
//! checkpoints are written atomically, so the last one stays whole.

use std::path::Path;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// The longest message the handler writes, in bytes.
const CAPACITY: usize = 1024;

/// The message, kept in atomics: the handler may only read memory that needs no lock.
static MESSAGE: [AtomicU8; CAPACITY] = [const { AtomicU8::new(0) }; CAPACITY];
static LENGTH: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: Mutex<bool> = Mutex::new(false);

/// Makes a SIGBUS from now on report that the memory-mapped file at `path` changed or shrank
/// under the run, and end the process with status 1. (With several files mapped, the message
/// names the last.)
pub(super) fn watch(path: &Path) -> std::io::Result<()> {
    let text = format!(
        "error: a bus error (SIGBUS), most probably a read past the end of the memory-mapped file \
         {}, which changed or shrank under the run; the last training-state checkpoint written, \
         if any, is intact: restore the file, or write new data to another file, and resume with \
         --resume",
        path.display()
    );
    let mut bytes = text.into_bytes();
    bytes.truncate(CAPACITY - 1);
    bytes.push(b'\n');
    LENGTH.store(0, Ordering::SeqCst);
    for (slot, &b) in MESSAGE.iter().zip(&bytes) {
        slot.store(b, Ordering::Relaxed);
    }
    LENGTH.store(bytes.len(), Ordering::SeqCst);
    let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
    if !*installed {
        // SAFETY: `report` only loads atomics, calls write(2) and _exit(2): all
        // async-signal-safe. signal-hook chains to the handler installed before (Rust's own, for
        // stack overflows, which returns for a fault outside a guard page), then runs this one;
        // any SIGBUS in the process ends here, so the message says "most probably".
        unsafe { signal_hook::low_level::register(libc::SIGBUS, report) }?;
        *installed = true;
    }
    Ok(())
}

/// The SIGBUS action: the message to stderr, then exit status 1 (returning would fault again).
fn report() {
    let mut text = [0u8; CAPACITY];
    let length = LENGTH.load(Ordering::SeqCst).min(CAPACITY);
    for (b, slot) in text.iter_mut().zip(&MESSAGE).take(length) {
        *b = slot.load(Ordering::Relaxed);
    }
    // SAFETY: write(2) of a buffer on this stack to standard error.
    let _ = unsafe { libc::write(2, text.as_ptr().cast(), length) };
    signal_hook::low_level::exit(1);
}
