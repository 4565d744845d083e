//! Which rank this process is, when `mpirun` launched it among several.

use mpi::environment::{Threading, Universe};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

/// This process's place among the ranks of a data-parallel run, and the MPI environment that
/// lasts as long as it (MPI is finalised when it is dropped).
pub struct Ranks {
    /// The MPI environment, initialised once.
    _universe: Universe,
    /// This process's rank, `0..size`.
    pub rank: usize,
    /// The number of ranks.
    pub size: usize,
    /// This process's rank among those on its host (MPI's shared-memory split), which chooses
    /// its GPU on a host with several.
    pub local_rank: usize,
    /// The number of ranks on this host, which share its cores when they train on the CPU.
    pub local_size: usize,
    /// Whether MPI lets a thread other than the main one call it (one at a time), so that
    /// gradients can be summed on a thread of their own while backward goes on.
    pub threaded: bool,
}

impl Ranks {
    /// Ends every rank of the job with `code`: a rank that fails calls it after saying why, so
    /// that no other rank waits for it in a collective.
    pub fn abort(&self, code: i32) -> ! {
        SimpleCommunicator::world().abort(code)
    }
}

/// The ranks of this run when a launcher (`mpirun`, `srun`) started this process among more
/// than one (its environment says so: `OMPI_COMM_WORLD_SIZE`, `PMI_SIZE` or `PMIX_SIZE`); MPI
/// is then initialised. `None` for a process started on its own, which runs as it always
/// does, without MPI.
pub fn launched_ranks() -> Option<Ranks> {
    let size = [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_SIZE",
        "MPI_LOCALNRANKS",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok())?;
    if size < 2 {
        return None;
    }
    let (universe, threading) = mpi::initialize_with_threading(Threading::Serialized)?;
    let world = universe.world();
    let local = world.split_shared(world.rank());
    Some(Ranks {
        rank: world.rank() as usize,
        size: world.size() as usize,
        local_rank: local.rank() as usize,
        local_size: local.size() as usize,
        threaded: threading >= Threading::Serialized,
        _universe: universe,
    })
}

/// Whether `flag` is set on any rank: a collective that every rank calls at the same point, so
/// that a decision taken on one rank (a signal received, say) is taken on all, at the same step.
pub fn any_rank(flag: bool) -> bool {
    let mut any = 0u8;
    SimpleCommunicator::world().all_reduce_into(
        &u8::from(flag),
        &mut any,
        mpi::collective::SystemOperation::max(),
    );
    any == 1
}
