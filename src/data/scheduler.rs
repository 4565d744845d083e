//! The mini-batch scheduler: which rows each step trains on, and a producer thread that
//! gathers them into host staging buffers while the device computes the previous step.
//!
//! Epoch `e`'s order is a Fisher–Yates shuffle drawn from ChaCha8 seeded with the run's seed on
//! stream `e`, so any position `(epoch, batch)` can be recomputed without replaying the run:
//! that is what makes a resumed run see exactly the batches an uninterrupted one would.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::Dataset;
use crate::error::{Error, Result};
use crate::loss::{Batch, Targets, TargetsView};

/// How epochs are cut into batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Order {
    /// Rows in the dataset.
    pub rows: usize,
    /// Rows per batch.
    pub batch_size: usize,
    /// Reshuffle every epoch (else the file's order).
    pub shuffle: bool,
    /// Drop the last batch when it is smaller than `batch_size`.
    pub drop_last: bool,
    /// The run's seed.
    pub seed: u64,
    /// The part of each batch this process trains on: all of it, or a rank's slice in a
    /// data-parallel run.
    pub share: Share,
}

/// The part of each batch one process takes: rank `rank` of `ranks` takes a contiguous slice,
/// the slices in rank order, the first `rows mod ranks` one row longer than the others (a rank
/// past the rows of a short batch takes none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// This process's rank, `0..ranks`.
    pub rank: usize,
    /// The number of processes sharing each batch.
    pub ranks: usize,
}

impl Share {
    /// The whole of every batch: one process.
    pub const WHOLE: Share = Share { rank: 0, ranks: 1 };

    /// The rows of a batch of `rows` rows that this share takes.
    pub fn of(&self, rows: usize) -> std::ops::Range<usize> {
        let (base, longer) = (rows / self.ranks, rows % self.ranks);
        let start = self.rank * base + self.rank.min(longer);
        start..start + base + usize::from(self.rank < longer)
    }
}

impl Default for Share {
    fn default() -> Self {
        Share::WHOLE
    }
}

impl Order {
    /// Checks the batch size against the data.
    pub fn new(
        rows: usize,
        batch_size: usize,
        shuffle: bool,
        drop_last: bool,
        seed: u64,
    ) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::Usage("batch size must be at least 1".into()));
        }
        if rows == 0 {
            return Err(Error::Usage(
                "the training data has no rows; there is nothing to train on".into(),
            ));
        }
        if drop_last && batch_size > rows {
            return Err(Error::Usage(format!(
                "batch size {batch_size} is larger than the {rows} training rows, so --drop-last \
                 would leave no batch at all; use a batch size of at most {rows}"
            )));
        }
        Ok(Self {
            rows,
            batch_size: batch_size.min(rows.max(1)),
            shuffle,
            drop_last,
            seed,
            share: Share::WHOLE,
        })
    }

    /// The same order, each batch cut to `share`'s rows.
    pub fn shared(self, share: Share) -> Self {
        Self { share, ..self }
    }

    /// Batches in one epoch.
    pub fn batches_per_epoch(&self) -> usize {
        if self.drop_last {
            self.rows / self.batch_size
        } else {
            self.rows.div_ceil(self.batch_size)
        }
    }

    /// The row order of epoch `epoch` (0-based).
    pub fn permutation(&self, epoch: u64) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.rows as u32).collect();
        if self.shuffle {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_stream(epoch);
            order.shuffle(&mut rng);
        }
        order
    }

    /// How many rows batch `batch` of an epoch has (the whole batch's, whatever the share):
    /// `batch_size`, or fewer for a last partial batch.
    pub fn batch_rows(&self, batch: usize) -> usize {
        (self.rows - batch * self.batch_size).min(self.batch_size)
    }

    /// The rows of batch `batch` of a permutation that this order's share takes (all of them
    /// for [`Share::WHOLE`]).
    pub fn batch<'a>(&self, permutation: &'a [u32], batch: usize) -> &'a [u32] {
        let start = batch * self.batch_size;
        let whole = &permutation[start..(start + self.batch_size).min(self.rows)];
        &whole[self.share.of(whole.len())]
    }
}

/// Rows gathered on the host, ready to upload.
#[derive(Debug, Clone)]
pub struct HostBatch {
    /// Position of this batch in the run: (epoch, batch within the epoch).
    pub position: (u64, usize),
    /// `[rows, inputs]`, row-major.
    pub features: Array2<f32>,
    /// The rows' targets.
    pub targets: Targets,
    /// The rows' indices in the dataset (which dropout's masks are keyed by).
    pub rows: Vec<u32>,
}

impl HostBatch {
    /// A view for [`crate::Engine::step`], each row known by its index in the dataset.
    pub fn batch(&self) -> Batch<'_> {
        Batch::new(self.features.view(), self.targets.view()).with_rows_in_dataset(&self.rows)
    }
}

/// Where streamed rows come from.
pub trait Source: Send + Sync {
    /// Rows available.
    fn rows(&self) -> usize;

    /// Copies the rows `indices` into `features` (resized as needed) and returns their targets.
    fn gather(&self, indices: &[u32], features: &mut Array2<f32>) -> Result<Targets>;

    /// A cheap fingerprint of the rows as they are trained on (standardised, if they are):
    /// `ROWSxCOLS:CRC`, the CRC32 of about 4096 evenly spaced rows, each row's features then its
    /// targets as little-endian bytes. The same data gives the same fingerprint in memory or
    /// memory-mapped; a checkpoint records it so that a resume can tell when the data changed.
    fn checksum(&self) -> Result<String> {
        let rows = self.rows();
        let indices: Vec<u32> = (0..rows)
            .step_by((rows / 4096).max(1))
            .map(|r| r as u32)
            .collect();
        let mut features = Array2::zeros((0, 0));
        let targets = self.gather(&indices, &mut features)?;
        let mut hasher = crc32fast::Hasher::new();
        for (i, row) in features.rows().into_iter().enumerate() {
            row.iter().for_each(|v| hasher.update(&v.to_le_bytes()));
            match &targets {
                Targets::Classes(c) => hasher.update(&c[i].to_le_bytes()),
                Targets::Dense(d) => d
                    .row(i)
                    .iter()
                    .for_each(|v| hasher.update(&v.to_le_bytes())),
            }
        }
        Ok(format!(
            "{rows}x{}:{:08x}",
            features.ncols(),
            hasher.finalize()
        ))
    }
}

impl Source for Dataset {
    fn rows(&self) -> usize {
        Dataset::rows(self)
    }

    fn gather(&self, indices: &[u32], features: &mut Array2<f32>) -> Result<Targets> {
        copy_rows(self.features.view(), indices, features);
        Ok(gather_targets(&self.targets.view(), indices))
    }
}

/// Copies rows `indices` of `source` into `out`: in place when `out` already has their shape,
/// else into a new array built row by row (each value written once, none zeroed first).
pub(crate) fn copy_rows(source: ArrayView2<'_, f32>, indices: &[u32], out: &mut Array2<f32>) {
    let cols = source.ncols();
    if out.dim() == (indices.len(), cols) {
        for (mut row, &i) in out.rows_mut().into_iter().zip(indices) {
            row.assign(&source.row(i as usize));
        }
        return;
    }
    let mut values = Vec::with_capacity(indices.len() * cols);
    for &i in indices {
        let row = source.row(i as usize);
        match row.as_slice() {
            Some(row) => values.extend_from_slice(row),
            None => values.extend(row.iter()),
        }
    }
    *out = Array2::from_shape_vec((indices.len(), cols), values)
        .expect("as many values as rows × cols");
}

/// The targets of rows `indices`.
pub(crate) fn gather_targets(targets: &TargetsView<'_>, indices: &[u32]) -> Targets {
    match targets {
        TargetsView::Classes(c) => {
            Targets::Classes(indices.iter().map(|&i| c[i as usize]).collect())
        }
        TargetsView::Dense(d) => {
            let rows: Vec<usize> = indices.iter().map(|&i| i as usize).collect();
            Targets::Dense(d.select(ndarray::Axis(0), &rows))
        }
    }
}

/// A producer thread gathering the run's batches, in order, into a ring of `depth` host
/// buffers: while the caller uploads and trains on one, the thread fills the next.
pub struct Stream {
    filled: Receiver<Result<HostBatch>>,
    free: SyncSender<Array2<f32>>,
    thread: Option<JoinHandle<()>>,
}

impl Stream {
    /// Streams `count` batches of `order` from `source`, starting at `(epoch, batch)`.
    pub fn start(
        source: Arc<dyn Source>,
        order: Order,
        from: (u64, usize),
        count: u64,
        depth: usize,
    ) -> Self {
        let depth = depth.max(2);
        let (filled_tx, filled) = sync_channel(depth);
        let (free, free_rx) = sync_channel::<Array2<f32>>(depth);
        for _ in 0..depth {
            free.send(Array2::zeros((0, 0)))
                .expect("the ring has room for every buffer");
        }
        let thread = std::thread::spawn(move || {
            let per_epoch = order.batches_per_epoch();
            let (mut epoch, mut batch) = from;
            let mut permutation = order.permutation(epoch);
            for _ in 0..count {
                if batch == per_epoch {
                    epoch += 1;
                    batch = 0;
                    permutation = order.permutation(epoch);
                }
                // Wait for a free buffer; the consumer hung up when there is none.
                let Ok(mut features) = free_rx.recv() else {
                    return;
                };
                let indices = order.batch(&permutation, batch);
                let item = source
                    .gather(indices, &mut features)
                    .map(|targets| HostBatch {
                        position: (epoch, batch),
                        features,
                        targets,
                        rows: indices.to_vec(),
                    });
                if filled_tx.send(item).is_err() {
                    return;
                }
                batch += 1;
            }
        });
        Self {
            filled,
            free,
            thread: Some(thread),
        }
    }

    /// The next batch, or `None` when the run's batches are done.
    pub fn next_batch(&mut self) -> Option<Result<HostBatch>> {
        self.filled.recv().ok()
    }

    /// Gives a batch's buffer back to the ring once its upload has been queued.
    pub fn recycle(&self, batch: HostBatch) {
        // The producer may already have finished; then the buffer is simply dropped.
        let _ = self.free.try_send(batch.features);
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // Close both channels so the producer, whether waiting for a free buffer or for room to
        // hand one over, sees the hang-up and returns; then wait for it.
        self.filled = sync_channel(0).1;
        self.free = sync_channel(0).0;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, Axis};

    use super::{Order, Share, copy_rows};

    #[test]
    fn rows_gathered_by_index_are_the_rows_ndarray_selects_in_either_layout() {
        let matrix = Array2::from_shape_fn((7, 5), |(i, j)| (10 * i + j) as f32);
        let indices = [6, 0, 3, 3, 1];
        let expected = matrix.select(Axis(0), &[6, 0, 3, 3, 1]);
        let column_major = matrix.t().as_standard_layout().into_owned().reversed_axes();
        assert!(!column_major.is_standard_layout());
        for source in [&matrix, &column_major] {
            let mut out = Array2::zeros((0, 0));
            copy_rows(source.view(), &indices, &mut out);
            assert_eq!(out, expected, "into a new array");
            copy_rows(source.view(), &[1, 1, 1, 1, 1], &mut out);
            assert_eq!(out, matrix.select(Axis(0), &[1; 5]), "in place");
        }
        let mut out = Array2::zeros((3, 3));
        copy_rows(matrix.view(), &[], &mut out);
        assert_eq!(out.dim(), (0, 5));
    }

    #[test]
    fn shares_cover_each_batch_in_rank_order_the_first_ranks_one_row_longer() {
        for ranks in 1..6 {
            for rows in 0..20 {
                let slices: Vec<_> = (0..ranks)
                    .map(|rank| Share { rank, ranks }.of(rows))
                    .collect();
                assert_eq!(slices[0].start, 0);
                assert_eq!(slices[ranks - 1].end, rows);
                for pair in slices.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start, "{rows} rows, {ranks} ranks");
                    assert!(pair[0].len() >= pair[1].len());
                    assert!(pair[0].len() - pair[1].len() <= 1);
                }
            }
        }
        assert_eq!(Share { rank: 1, ranks: 3 }.of(10), 4..7);
        assert_eq!(Share { rank: 1, ranks: 2 }.of(1), 1..1);
    }

    #[test]
    fn a_shared_order_gives_each_rank_its_rows_of_the_same_batches() {
        let order = Order::new(10, 4, true, false, 7).unwrap();
        let permutation = order.permutation(3);
        for batch in 0..order.batches_per_epoch() {
            let whole = order.batch(&permutation, batch);
            let pieces: Vec<u32> = (0..3)
                .flat_map(|rank| {
                    let shared = order.shared(Share { rank, ranks: 3 });
                    shared.batch(&permutation, batch).to_vec()
                })
                .collect();
            assert_eq!(pieces, whole);
            assert_eq!(
                order.shared(Share { rank: 2, ranks: 3 }).batch_rows(batch),
                whole.len()
            );
        }
    }
}
