//! Gradient buckets summed over the ranks on a thread of their own while backward goes on, as
//! Horovod's background thread and DDP's bucketed allreduce do.
//!
//! The engine hands each bucket over as soon as backward has finished it
//! ([`crate::gradient_buckets`]); the bucket is copied into a buffer of its own and queued to
//! the summing thread, which sums the queue's buckets one after another with the fixed-order
//! sum ([`FixedOrderSum`]) on a communicator of its own, while the engine computes the next
//! layers' gradients. Every rank queues the buckets in the same order (bucket by bucket in
//! backward's order, each bucket model by model), whatever order its engine hands them over
//! in, so the collectives match; each element's sum is still
//! taken in rank order, so bucketing changes no bit. Buffers go back and forth between the
//! threads and are reused: after the first step, nothing is allocated.
//!
//! The thread needs MPI to let a thread other than the main one call it
//! (`MPI_THREAD_SERIALIZED` or more; the main thread calls MPI only while the summing thread
//! waits for work). With an MPI that does not, the buckets are summed on the main thread as
//! they come, without overlap.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use super::reduce::FixedOrderSum;
use crate::error::Result;
use crate::gradient_buckets::{GradientBuckets, GradientSink};

/// A bucket on its way to the summing thread: its slot (`model · buckets + bucket`) and
/// values.
struct Job {
    slot: usize,
    values: Vec<f32>,
}

/// A bucket summed: its slot, its values summed over the ranks, and the time the sum took.
struct Summed {
    slot: usize,
    values: Vec<f32>,
    took: Duration,
}

/// Where the buckets are summed.
enum Summer {
    /// On a thread of their own, overlapping backward.
    Thread {
        jobs: Option<SyncSender<Job>>,
        summed: Receiver<Summed>,
        thread: Option<JoinHandle<()>>,
    },
    /// On the main thread, as each bucket comes.
    Inline(FixedOrderSum),
}

/// Sums every model's gradients over the ranks bucket by bucket as an engine hands them over,
/// into one flat gradient per model ([`GradientSink`]).
pub struct BucketSum {
    buckets: GradientBuckets,
    summer: Summer,
    models: usize,
    /// Each slot's buffer while it is on this thread and not filled.
    idle: Vec<Option<Vec<f32>>>,
    /// Each slot's buffer once filled, until its turn to be summed comes.
    filled: Vec<Option<Vec<f32>>>,
    /// The next bucket to sum, in the order every rank sums them (bucket by bucket, each
    /// bucket model by model), whatever order the engine handed them over in.
    next: usize,
    /// Buckets queued and not yet summed.
    in_flight: usize,
    /// Each model's flat gradient, summed over the ranks as its buckets come back.
    sums: Vec<Vec<f32>>,
    /// Time spent summing since the last [`BucketSum::finish`], on whichever thread.
    communication: Duration,
}

/// Where the time of one step's sums went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SumTimes {
    /// Summing the buckets over the ranks.
    pub communication: Duration,
    /// Waiting, once backward was done, for the sums still under way: the part of
    /// `communication` not hidden behind backward.
    pub exposed: Duration,
}

impl BucketSum {
    /// Sums over every rank of the world the gradients of `models` models grouped as
    /// `buckets`, on a summing thread when `threaded` (MPI allows it), else on the calling
    /// thread. Collective: every rank calls it at the same point.
    pub fn new(buckets: GradientBuckets, models: usize, threaded: bool) -> Self {
        let slots = models * buckets.buckets().len();
        let idle = buckets
            .buckets()
            .iter()
            .cycle()
            .take(slots)
            .map(|b| Some(Vec::with_capacity(b.values.len())))
            .collect();
        let sums = vec![vec![0.0; buckets.total()]; models];
        let summer = if threaded {
            spawn(slots)
        } else {
            Summer::Inline(FixedOrderSum::new(SimpleCommunicator::world().duplicate()))
        };
        Self {
            buckets,
            summer,
            models,
            idle,
            filled: vec![None; slots],
            next: 0,
            in_flight: 0,
            sums,
            communication: Duration::ZERO,
        }
    }

    /// Time spent summing on this thread since the last [`BucketSum::finish`] (without a
    /// summing thread; zero with one, whose time is known once it is done).
    pub fn summing_so_far(&self) -> Duration {
        match self.summer {
            Summer::Thread { .. } => Duration::ZERO,
            Summer::Inline(_) => self.communication,
        }
    }

    /// Model `k`'s flat gradient summed over the ranks, once [`BucketSum::finish`] returned.
    pub fn sum(&self, k: usize) -> &[f32] {
        &self.sums[k]
    }

    /// Waits for every bucket queued to be summed, and says where the time went since the
    /// last call.
    pub fn finish(&mut self) -> SumTimes {
        let started = Instant::now();
        debug_assert_eq!(self.next, self.filled.len(), "every bucket was handed over");
        self.next = 0;
        while self.in_flight > 0 {
            let Summer::Thread { summed, .. } = &self.summer else {
                unreachable!("only the summing thread leaves buckets in flight")
            };
            let done = summed
                .recv()
                .expect("the summing thread runs as long as the engine");
            self.in_flight -= 1;
            self.communication += done.took;
            self.store(done.slot, done.values);
        }
        let communication = std::mem::take(&mut self.communication);
        SumTimes {
            communication,
            // Summed on this thread, every sum held backward up.
            exposed: match self.summer {
                Summer::Thread { .. } => started.elapsed(),
                Summer::Inline(_) => communication,
            },
        }
    }

    /// Copies slot `slot`'s summed values into its model's flat gradient and keeps its buffer.
    fn store(&mut self, slot: usize, values: Vec<f32>) {
        let per_model = self.buckets.buckets().len();
        let range = self.buckets.buckets()[slot % per_model].values.clone();
        self.sums[slot / per_model][range].copy_from_slice(&values);
        self.idle[slot] = Some(values);
    }
}

impl GradientSink for BucketSum {
    fn buckets(&self) -> &GradientBuckets {
        &self.buckets
    }

    fn ready<'a>(
        &mut self,
        k: usize,
        bucket: usize,
        tensor: &dyn Fn(usize) -> &'a [f32],
    ) -> Result<()> {
        let slot = k * self.buckets.buckets().len() + bucket;
        let mut values = self.idle[slot]
            .take()
            .expect("each bucket is handed over once per step");
        values.clear();
        for &t in &self.buckets.buckets()[bucket].tensors {
            values.extend_from_slice(tensor(t));
        }
        self.filled[slot] = Some(values);
        // Sum what is ready in the common order: an engine may hand models over one after
        // another, another bucket by bucket, and every rank must send the same sums in turn.
        while self.next < self.filled.len() {
            let (b, k) = (self.next / self.models, self.next % self.models);
            let slot = k * self.buckets.buckets().len() + b;
            let Some(values) = self.filled[slot].take() else {
                break;
            };
            self.next += 1;
            self.start(slot, values);
        }
        Ok(())
    }
}

impl BucketSum {
    /// Starts summing slot `slot`'s values: queued to the summing thread, or summed here.
    fn start(&mut self, slot: usize, mut values: Vec<f32>) {
        match &mut self.summer {
            Summer::Thread { jobs, .. } => {
                jobs.as_ref()
                    .expect("the queue is open until the engine is dropped")
                    .send(Job { slot, values })
                    .expect("the summing thread runs as long as the engine");
                self.in_flight += 1;
            }
            Summer::Inline(sum) => {
                let started = Instant::now();
                sum.sum(&mut values);
                self.communication += started.elapsed();
                self.store(slot, values);
            }
        }
    }
}

impl Drop for BucketSum {
    /// Closes the queue and lets the summing thread end.
    fn drop(&mut self) {
        if let Summer::Thread { jobs, thread, .. } = &mut self.summer {
            jobs.take();
            if let Some(thread) = thread.take() {
                thread.join().ok();
            }
        }
    }
}

/// Starts the summing thread, with room for `slots` buckets in each direction, and waits until
/// it has its communicator (made by a collective, while this thread calls no other).
fn spawn(slots: usize) -> Summer {
    let (jobs, queued) = sync_channel::<Job>(slots.max(1));
    let (done, summed) = sync_channel::<Summed>(slots.max(1));
    let (ready, started) = sync_channel::<()>(1);
    let thread = std::thread::Builder::new()
        .name("gradient-sum".into())
        .spawn(move || {
            let mut sum = FixedOrderSum::new(SimpleCommunicator::world().duplicate());
            ready.send(()).ok();
            while let Ok(mut job) = queued.recv() {
                let started = Instant::now();
                sum.sum(&mut job.values);
                let summed = Summed {
                    slot: job.slot,
                    values: job.values,
                    took: started.elapsed(),
                };
                if done.send(summed).is_err() {
                    break;
                }
            }
        })
        .expect("the system starts a thread");
    started
        .recv()
        .expect("the summing thread makes its communicator");
    Summer::Thread {
        jobs: Some(jobs),
        summed,
        thread: Some(thread),
    }
}
