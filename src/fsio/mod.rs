//! Files: reading inputs with errors that name the path, and writing outputs so that a crash
//! never leaves a torn file and nothing that is not ours is replaced.

mod preflight;
mod read;
mod target;
mod write;

pub use preflight::{check_output, remove_stale_temporaries};
pub use read::read;
pub use read::{Extent, read_until, reserve};
pub use target::is_stream;
pub use write::write_atomic;
