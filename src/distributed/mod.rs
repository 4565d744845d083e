//! Data-parallel training over MPI (feature `mpi`): one process per device, launched by
//! `mpirun -np N`; every rank holds a replica of the model and takes a contiguous slice of each
//! global batch, and the slices' gradients are summed across ranks before every rank applies
//! the same update.
//!
//! A global batch of `B` rows is cut into `N` contiguous slices, the first `B mod N` ranks
//! taking one row more ([`slice`]). Rank `r` accumulates the gradient of its rows as one
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
//! before the group's update. The sum is taken in a fixed order ([`reduce`]), so reruns with
//! the same ranks and devices are bit-identical.

#[cfg(feature = "mpi")]
mod engine;
#[cfg(feature = "mpi")]
mod reduce;
#[cfg(feature = "mpi")]
mod world;

#[cfg(feature = "mpi")]
pub use engine::{DataParallel, StepTimes};
#[cfg(feature = "mpi")]
pub use reduce::FixedOrderSum;
#[cfg(feature = "mpi")]
pub use world::{Ranks, any_rank, launched_ranks};

use std::ops::Range;

/// The rows of a batch of `rows` rows that rank `rank` of `ranks` takes: `ranks` contiguous
/// slices in rank order, the first `rows mod ranks` one row longer than the others (a rank
/// past the rows of a short batch takes none).
pub fn slice(rows: usize, rank: usize, ranks: usize) -> Range<usize> {
    let (base, longer) = (rows / ranks, rows % ranks);
    let start = rank * base + rank.min(longer);
    start..start + base + usize::from(rank < longer)
}

#[cfg(test)]
mod tests {
    use super::slice;

    #[test]
    fn slices_cover_the_batch_in_order_the_first_ranks_one_row_longer() {
        for ranks in 1..6 {
            for rows in 0..20 {
                let slices: Vec<_> = (0..ranks).map(|r| slice(rows, r, ranks)).collect();
                assert_eq!(slices[0].start, 0);
                assert_eq!(slices[ranks - 1].end, rows);
                for (r, pair) in slices.windows(2).enumerate() {
                    assert_eq!(pair[0].end, pair[1].start, "{rows} rows, {ranks} ranks");
                    assert!(pair[0].len() >= pair[1].len());
                    assert!(pair[0].len() - pair[1].len() <= 1, "rank {r}");
                }
            }
        }
        assert_eq!(slice(10, 0, 3), 0..4);
        assert_eq!(slice(10, 1, 3), 4..7);
        assert_eq!(slice(10, 2, 3), 7..10);
        assert_eq!(slice(1, 1, 2), 1..1);
    }
}
