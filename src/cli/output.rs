//! Printing that a closed pipe or terminal cannot stop. `downhill train ... | head -1` closes
//! the pipe after one line; what is printed after that is dropped (and the process goes on
//! training and saving) instead of ending the process with a panic.

use std::fmt::Arguments;
use std::io::Write;

/// Whether this process prints: every process but the ranks other than 0 of a data-parallel
/// run, which print nothing but their errors ([`failure`]).
fn prints() -> bool {
    super::ranks::get().is_none_or(|r| r.rank == 0)
}

/// Writes one line to standard output, dropping it if standard output is closed.
pub fn out(line: Arguments<'_>) {
    if prints() {
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
}

/// Writes one line to standard error, dropping it if standard error is closed.
pub fn err(line: Arguments<'_>) {
    if prints() {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// Writes one line of a failure to standard error, from every rank.
pub fn failure(line: Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// `println!` that a closed standard output does not turn into a panic.
macro_rules! outln {
    () => {
        $crate::cli::output::out(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::out(format_args!($($arg)*))
    };
}

/// `eprintln!` that a closed standard error does not turn into a panic.
macro_rules! errln {
    () => {
        $crate::cli::output::err(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::cli::output::err(format_args!($($arg)*))
    };
}

pub(crate) use {errln, outln};
