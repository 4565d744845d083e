//! An engine that trains one replica of its models per rank on a slice of each batch, and sums
//! the slices' gradients over the ranks before every update.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use ndarray::{Array2, ArrayView2};

use super::overlap::BucketSum;
use crate::accumulate::Part;
use crate::data::Dataset;
use crate::engine::{Engine, Metrics, OptimizerState, Setup, hand_over_all};
use crate::error::{Error, Result};
use crate::gradient_buckets::{GradientBuckets, GradientSink, hand_over_model};
use crate::loss::Batch;
use crate::model::Parameters;

/// Where a data-parallel run's time went on one rank, summed over its steps.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepTimes {
    /// Optimizer steps taken.
    pub steps: u64,
    /// Forward and backward of this rank's slices, handing the gradients over bucket by bucket
    /// (read back from a GPU) as backward finishes them.
    pub compute: Duration,
    /// Summing the gradient buckets over the ranks, on the summing thread, overlapping
    /// backward.
    pub communication: Duration,
    /// Waiting, once backward was done, for the sums still under way: the communication not
    /// hidden behind backward. `communication − exposed` was hidden.
    pub exposed: Duration,
    /// Writing the summed gradients back and applying the update.
    pub update: Duration,
}

/// [`Engine`] over the ranks of an MPI job: `inner` trains this rank's replica on its share of
/// each batch, which the training loop's data plan cuts ([`Share`](crate::data::scheduler::Share),
/// so each rank reads only its rows). During the backward of each group's last mini-batch the
/// engine hands every model's gradients over bucket by bucket
/// ([`crate::gradient_buckets`]), and each bucket is summed over the ranks in a fixed order
/// ([`FixedOrderSum`](super::FixedOrderSum)) on a thread of its own while backward goes on
/// ([`BucketSum`]); the update then applies the sums, so every rank makes the update of the
/// global batch. Metrics are summed over the ranks; evaluation and prediction run on this
/// rank's replica alone (every replica is the same).
pub struct DataParallel {
    inner: Box<dyn Engine>,
    comm: SimpleCommunicator,
    rank: usize,
    ranks: usize,
    sum: BucketSum,
    /// Whether this rank has accumulated rows in the current group (a rank whose slices of a
    /// group are all empty contributes a zero gradient).
    contributed: bool,
    /// Whether this group's gradients have been handed over to be summed.
    handed: bool,
    /// Set when a step failed part-way on this rank: its sums no longer match the other
    /// ranks', and nothing more can be trained.
    broken: bool,
    /// Zeros as long as the model's longest tensor: the gradient of a rank without rows.
    zeros: Vec<f32>,
    /// Each tensor's length, in the model's order.
    tensor_lens: Vec<usize>,
    /// Every this many steps, the ranks compare checksums of their parameters (0: never).
    check_every: u64,
    times: Arc<Mutex<StepTimes>>,
}

impl DataParallel {
    /// Trains `inner`'s models data-parallel over every rank of the job (every rank wraps a
    /// replica built from the same setup and parameters), summing gradients in buckets of at
    /// most `bucket_bytes` bytes ([`GradientBuckets::new`]) on a summing thread when `threaded`
    /// (MPI allows it: [`Ranks::threaded`](super::Ranks::threaded)), and comparing the
    /// replicas' parameters every `check_every` steps when it is above 0. Collective.
    pub fn new(
        inner: Box<dyn Engine>,
        bucket_bytes: usize,
        threaded: bool,
        check_every: u64,
    ) -> Self {
        let comm = SimpleCommunicator::world();
        let (rank, ranks) = (comm.rank() as usize, comm.size() as usize);
        let model = inner.setup(0).model;
        let tensor_lens: Vec<usize> = model.tensors().iter().map(|t| t.len()).collect();
        let longest = tensor_lens.iter().copied().max().unwrap_or(0);
        let buckets = GradientBuckets::new(&model, bucket_bytes);
        let sum = BucketSum::new(buckets, inner.models(), threaded);
        Self {
            inner,
            comm,
            rank,
            ranks,
            sum,
            contributed: false,
            handed: false,
            broken: false,
            zeros: vec![0.0; longest],
            tensor_lens,
            check_every,
            times: Arc::default(),
        }
    }

    /// How many buckets each model's gradients are summed in.
    pub fn buckets(&self) -> usize {
        self.sum.buckets().buckets().len()
    }

    /// Where this rank's time went so far, updated at every step (shared, so that it can be
    /// read once the engine is handed over as a `Box<dyn Engine>`).
    pub fn times(&self) -> Arc<Mutex<StepTimes>> {
        Arc::clone(&self.times)
    }

    /// Adds `elapsed` to one of this rank's times.
    fn count(&self, elapsed: Duration, field: fn(&mut StepTimes) -> &mut Duration) {
        let mut times = self.times.lock().unwrap_or_else(|e| e.into_inner());
        *field(&mut times) += elapsed;
    }

    /// This rank's part in a mini-batch of `rows` rows that is `part` of its group: the rows'
    /// gradient scaled by the global group's size, never ending the group on its own.
    fn local_part(&mut self, part: Part) -> Part {
        let local = Part {
            group_rows: part.group_rows,
            first: !self.contributed,
            last: false,
        };
        self.contributed = true;
        local
    }

    /// Trains this rank's share of a mini-batch that is `part` of its group (`train` on the
    /// inner engine, with or without a sink): in the group's last mini-batch, the gradients are
    /// handed over to be summed during backward.
    fn share(
        &mut self,
        rows: usize,
        part: Part,
        train: impl FnOnce(&mut dyn Engine, Part, Option<&mut BucketSum>) -> Result<()>,
    ) -> Result<()> {
        if self.broken {
            return Err(Error::Usage(
                "a data-parallel step failed part-way on this rank, so its gradient sums no \
                 longer match the other ranks': nothing more can be trained on this engine"
                    .into(),
            ));
        }
        // Until the step ends, a failure leaves this rank out of step with the others.
        self.broken = true;
        if part.first {
            self.contributed = false;
            self.handed = false;
        }
        if rows > 0 {
            let local = self.local_part(part);
            let started = Instant::now();
            let summing = self.sum.summing_so_far();
            let sink = part.last.then_some(&mut self.sum);
            train(self.inner.as_mut(), local, sink)?;
            self.handed |= part.last;
            // Buckets summed on this thread as they came are communication, not compute.
            let summed_here = self.sum.summing_so_far() - summing;
            self.count(started.elapsed() - summed_here, |t| &mut t.compute);
        }
        self.finish(part)?;
        self.broken = false;
        Ok(())
    }

    /// Ends a group when `part.last`: waits for every model's gradients summed over the ranks
    /// (handing them over first if backward has not), and updates.
    fn finish(&mut self, part: Part) -> Result<()> {
        if !part.last {
            return Ok(());
        }
        if !self.handed {
            let started = Instant::now();
            if self.contributed {
                hand_over_all(self.inner.as_mut(), &mut self.sum)?;
            } else {
                let (zeros, lens) = (&self.zeros, &self.tensor_lens);
                for k in 0..self.inner.models() {
                    hand_over_model(&mut self.sum, k, &|t| &zeros[..lens[t]])?;
                }
            }
            self.count(started.elapsed(), |t| &mut t.compute);
        }
        self.handed = false;
        let times = self.sum.finish();
        self.count(times.communication, |t| &mut t.communication);
        self.count(times.exposed, |t| &mut t.exposed);
        let started = Instant::now();
        for k in 0..self.inner.models() {
            self.inner.set_flat_gradients(k, self.sum.sum(k))?;
        }
        self.inner.apply_update()?;
        self.count(started.elapsed(), |t| &mut t.update);
        self.times.lock().unwrap_or_else(|e| e.into_inner()).steps += 1;
        let step = self.inner.steps();
        if self.check_every > 0 && step.is_multiple_of(self.check_every) {
            self.check_replicas(step)?;
        }
        Ok(())
    }

    /// Why [`Engine::step`] is refused.
    fn needs_parts() -> Error {
        Error::Usage(
            "a data-parallel step takes this rank's share of a batch with the whole batch's \
             rows: call accumulate with Part::whole(rows of the whole batch), as train() does"
                .into(),
        )
    }

    /// Compares a checksum of every model's parameters across the ranks.
    fn check_replicas(&mut self, step: u64) -> Result<()> {
        let mut hasher = crc32fast::Hasher::new();
        for k in 0..self.inner.models() {
            for (_, values) in self.inner.parameters(k)?.tensors_mut() {
                hasher.update(bytemuck::cast_slice(values));
            }
        }
        let mine = hasher.finalize();
        let mut all = vec![0u32; self.ranks];
        self.comm.all_gather_into(&mine, &mut all[..]);
        if all.iter().any(|&c| c != all[0]) {
            let checksums = all.iter().map(|c| format!("{c:08x}")).collect::<Vec<_>>();
            return Err(Error::ReplicasDiffer {
                step,
                checksums: checksums.join(", "),
            });
        }
        Ok(())
    }
}

impl Engine for DataParallel {
    fn describe(&self) -> String {
        format!(
            "{} (rank {} of {}, data-parallel)",
            self.inner.describe(),
            self.rank,
            self.ranks
        )
    }

    fn models(&self) -> usize {
        self.inner.models()
    }

    fn setup(&self, k: usize) -> Setup {
        self.inner.setup(k)
    }

    /// `batch` is this rank's share of the mini-batch (possibly no rows), as the training
    /// loop's data plan cuts it ([`crate::train::TrainConfig::share`]).
    fn accumulate(&mut self, batch: &Batch<'_>, part: Part) -> Result<()> {
        self.share(batch.rows(), part, |inner, local, sink| match sink {
            Some(sink) => inner.accumulate_into(batch, local, sink),
            None => inner.accumulate(batch, local),
        })
    }

    /// `indices` are this rank's share of the mini-batch (possibly none).
    fn accumulate_resident(&mut self, indices: &[u32], part: Part) -> Result<()> {
        self.share(indices.len(), part, |inner, local, sink| match sink {
            Some(sink) => inner.accumulate_resident_into(indices, local, sink),
            None => inner.accumulate_resident(indices, local),
        })
    }

    /// Refused: a step needs the global batch's rows as its group's, which only
    /// [`Engine::accumulate`] with a [`Part`] carries (as the training loop calls it).
    fn step(&mut self, _batch: &Batch<'_>) -> Result<()> {
        Err(Self::needs_parts())
    }

    /// Refused, as [`DataParallel::step`].
    fn step_resident(&mut self, _indices: &[u32]) -> Result<()> {
        Err(Self::needs_parts())
    }

    fn apply_update(&mut self) -> Result<()> {
        self.finish(Part {
            group_rows: 1,
            first: false,
            last: true,
        })
    }

    /// The loss of this rank's slice of the most recent mini-batch (the global batch's is in
    /// [`Engine::take_metrics`], summed over the ranks).
    fn last_losses(&mut self) -> Result<Vec<f32>> {
        self.inner.last_losses()
    }

    fn gradients(&mut self, k: usize) -> Result<Parameters> {
        self.inner.gradients(k)
    }

    fn set_gradients(&mut self, k: usize, gradients: &Parameters) -> Result<()> {
        self.inner.set_gradients(k, gradients)
    }

    fn parameters(&mut self, k: usize) -> Result<Parameters> {
        self.inner.parameters(k)
    }

    fn set_parameters(&mut self, k: usize, parameters: &Parameters) -> Result<()> {
        self.inner.set_parameters(k, parameters)
    }

    fn predict(&mut self, k: usize, features: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        self.inner.predict(k, features)
    }

    fn runs_on_host(&self) -> bool {
        self.inner.runs_on_host()
    }

    fn steps(&self) -> u64 {
        self.inner.steps()
    }

    fn set_mask_seed(&mut self, seed: u64) {
        self.inner.set_mask_seed(seed);
    }

    fn set_learning_rates(&mut self, lrs: &[f64]) -> Result<()> {
        self.inner.set_learning_rates(lrs)
    }

    fn learning_rates(&self) -> Vec<f64> {
        self.inner.learning_rates()
    }

    fn set_clip_norm(&mut self, max_norm: Option<f32>) -> Result<()> {
        self.inner.set_clip_norm(max_norm)
    }

    fn freeze(&mut self, k: usize) -> Result<()> {
        self.inner.freeze(k)
    }

    /// Each model's metrics summed over the ranks, in rank order.
    fn take_metrics(&mut self) -> Result<Vec<Metrics>> {
        let fields = metric_fields(&self.inner.take_metrics()?);
        let mut all = vec![0.0f64; fields.len() * self.ranks];
        self.comm.all_gather_into(&fields[..], &mut all[..]);
        let mut summed = vec![Metrics::default(); fields.len() / METRIC_FIELDS];
        for rank in all.chunks_exact(fields.len()) {
            for (m, theirs) in summed.iter_mut().zip(metrics_of(rank)) {
                m.loss_sum += theirs.loss_sum;
                m.rows += theirs.rows;
                m.correct += theirs.correct;
                m.nonfinite |= theirs.nonfinite;
            }
        }
        Ok(summed)
    }

    /// Rank 0's evaluation, on every rank: the replicas may differ in their last bits (ranks
    /// on CPUs with other SIMD kernels, say), and every rank must take the decisions made on
    /// it (early stopping, the divergence limits) alike, or they would part ways in the next
    /// collective.
    fn evaluate(&mut self, batch: &Batch<'_>) -> Result<Vec<Metrics>> {
        let mut fields = metric_fields(&self.inner.evaluate(batch)?);
        self.comm.process_at_rank(0).broadcast_into(&mut fields[..]);
        Ok(metrics_of(&fields).collect())
    }

    fn optimizer_state(&mut self, k: usize) -> Result<OptimizerState> {
        self.inner.optimizer_state(k)
    }

    fn set_optimizer_state(&mut self, k: usize, state: &OptimizerState) -> Result<()> {
        self.inner.set_optimizer_state(k, state)
    }

    fn load_resident(&mut self, data: Arc<Dataset>) -> Result<()> {
        self.inner.load_resident(data)
    }

    fn synchronize(&mut self) -> Result<()> {
        self.inner.synchronize()
    }
}

/// Numbers per model in [`metric_fields`].
const METRIC_FIELDS: usize = 4;

/// Each model's metrics as numbers to send: loss sum, rows, correct rows, non-finite (0 or 1).
fn metric_fields(metrics: &[Metrics]) -> Vec<f64> {
    metrics
        .iter()
        .flat_map(|m| {
            [
                f64::from(m.loss_sum),
                m.rows as f64,
                m.correct as f64,
                f64::from(u8::from(m.nonfinite)),
            ]
        })
        .collect()
}

/// The metrics [`metric_fields`] sent.
fn metrics_of(fields: &[f64]) -> impl Iterator<Item = Metrics> + '_ {
    fields.chunks_exact(METRIC_FIELDS).map(|f| Metrics {
        loss_sum: f[0] as f32,
        rows: f[1] as u64,
        correct: f[2] as u64,
        nonfinite: f[3] != 0.0,
    })
}
