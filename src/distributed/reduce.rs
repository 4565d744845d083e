//! The sum of a vector over every rank, in a fixed order whatever MPI's algorithms.
//!
//! `MPI_Allreduce` leaves the order of a floating-point sum to the library, whose algorithm
//! may change with the message size, the number of ranks or the library's tuning, so its bits
//! are not promised from run to run. This sum is built from two collectives that only move
//! data: each rank cuts the vector into `N` equal chunks (padded with zeros), an all-to-all
//! gives rank `c` chunk `c` of every rank, rank `c` adds them in rank order,
//! `s_c = ((g_0,c + g_1,c) + g_2,c) + …`, and an all-gather gives every rank every `s_c`. Each
//! element's sum is thus always taken in rank order, and each rank sends and receives
//! `2 (N−1)/N` of the vector, as a ring allreduce does.

use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

/// Sums vectors over every rank of a communicator in rank order (see the module docs), keeping
/// its buffers from one call to the next.
pub struct FixedOrderSum {
    comm: SimpleCommunicator,
    ranks: usize,
    received: Vec<f32>,
    own_sum: Vec<f32>,
}

impl FixedOrderSum {
    /// A sum over the ranks of `comm`.
    pub fn new(comm: SimpleCommunicator) -> Self {
        Self {
            ranks: comm.size() as usize,
            comm,
            received: Vec::new(),
            own_sum: Vec::new(),
        }
    }

    /// Replaces `values` with their element-wise sum over every rank, `Σ_r values_r` added in
    /// rank order. Every rank must call it with vectors of the same length. `values` is padded
    /// to whole chunks while it is sent and receives the sums in place.
    pub fn sum(&mut self, values: &mut Vec<f32>) {
        let (n, len) = (self.ranks, values.len());
        let chunk = len.div_ceil(n).max(1);
        values.resize(chunk * n, 0.0);
        self.received.resize(chunk * n, 0.0);
        self.comm
            .all_to_all_into(&values[..], &mut self.received[..]);
        // This rank's chunk of every rank, in rank order: added in that order.
        self.own_sum.clear();
        self.own_sum.extend_from_slice(&self.received[..chunk]);
        for from in self.received.chunks_exact(chunk).skip(1) {
            for (s, &v) in self.own_sum.iter_mut().zip(from) {
                *s += v;
            }
        }
        self.comm
            .all_gather_into(&self.own_sum[..], &mut values[..]);
        values.truncate(len);
    }
}
