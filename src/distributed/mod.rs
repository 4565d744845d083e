//! Data-parallel training over MPI (feature `mpi`): one process per device, launched by
//! `mpirun -np N`; every rank holds a replica of the model and takes a contiguous slice of each
//! global batch, and the slices' gradients are summed across ranks before every rank applies
//! the same update.
//!
//! A global batch of `B` rows is cut into `N` contiguous slices, the first `B mod N` ranks
//! taking one row more ([`Share`](crate::data::scheduler::Share), which the training loop's data
//! plan applies, so that each rank gathers or reads only its rows). Rank `r` accumulates the gradient of its rows as one
//! mini-batch of a group of `B` rows ([`crate::accumulate`]): `g_r = (r_r / B) · ∇L_r`, with
//! `∇L_r` the mean-loss gradient of its `r_r` rows. The sum over ranks is then the gradient of
//! the global batch's mean loss,
//!
//! ```text
//! g = Σ_r g_r = Σ_r (r_r / B) · ∇L_r = ∇ (1/N(B)) Σ_rows ℓ_row
//! ```
//!
//! exactly the single-process gradient (up to the order of the sum), and every rank applies
//! `θ ← update(θ, clip(g))` to identical parameters, so the replicas stay identical. Under
//! `--accumulate`, each mini-batch of a group is sliced the same way and the sum is taken once,
//! before the group's update. The sum is taken bucket by bucket while backward runs
//! ([`crate::gradient_buckets`], `BucketSum`), in a fixed order (`FixedOrderSum`), so reruns
//! with the same ranks and devices are bit-identical.
//!
//! A sweep under mpirun splits its models across the ranks instead, with no communication
//! until its end (`gather_runs`, `share_parameters`).

#[cfg(feature = "mpi")]
mod engine;
#[cfg(feature = "mpi")]
mod overlap;
#[cfg(feature = "mpi")]
mod reduce;
#[cfg(feature = "mpi")]
mod sweep;
#[cfg(feature = "mpi")]
mod world;

#[cfg(feature = "mpi")]
pub use engine::{DataParallel, StepTimes};
#[cfg(feature = "mpi")]
pub use overlap::{BucketSum, SumTimes};
#[cfg(feature = "mpi")]
pub use reduce::FixedOrderSum;
#[cfg(feature = "mpi")]
pub use sweep::{gather_runs, share_parameters};
#[cfg(feature = "mpi")]
pub use world::{Ranks, any_rank, launched_ranks};

/// How many ranks a launcher (`mpirun`, `srun`) started this process among, as its environment
/// says (`OMPI_COMM_WORLD_SIZE`, `PMI_SIZE` or `PMIX_SIZE`); `None` when none did.
pub fn launcher_ranks() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok())
}
