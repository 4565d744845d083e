//! This process's place in a data-parallel run (`mpirun -np N downhill train`), as the commands
//! see it: set once at start, read where a command behaves differently on a rank.

use std::sync::OnceLock;

use downhill::{Error, Result};

/// A rank of a run launched among several processes.
#[derive(Debug, Clone, Copy)]
pub struct Rank {
    /// This process's rank, `0..size`; rank 0 prints and writes every output.
    pub rank: usize,
    /// The number of ranks.
    pub size: usize,
    /// This process's rank among those on its host, which chooses its GPU where the host has
    /// several.
    pub local_rank: usize,
    /// Whether MPI lets another thread call it, so that gradients are summed on a thread of
    /// their own while backward goes on.
    #[cfg(feature = "mpi")]
    pub threaded: bool,
}

static RANK: OnceLock<Rank> = OnceLock::new();

/// Records this process's rank (once, at start).
#[cfg(feature = "mpi")]
pub fn set(rank: Rank) {
    let _ = RANK.set(rank);
}

/// This process's rank when a launcher started it among several, else `None`.
pub fn get() -> Option<Rank> {
    RANK.get().copied()
}

/// An error for `command` when this process is one of several ranks: only `train` (data-parallel)
/// and `sweep` (its models split across the ranks) run under mpirun.
pub fn single_process(command: &str) -> Result<()> {
    match get() {
        Some(r) => Err(Error::Usage(format!(
            "`downhill {command}` runs in a single process, and this is rank {} of {}: run it \
             without mpirun (or with -np 1); under mpirun, `train` trains one model \
             data-parallel and `sweep` splits its models across the ranks",
            r.rank, r.size
        ))),
        None => Ok(()),
    }
}
