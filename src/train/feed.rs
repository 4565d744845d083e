//! Where each training step's batch comes from: gathered on the device from data resident
//! there, or streamed from the host by the scheduler's producer thread.

use std::sync::Arc;

use super::config::{Residency, TrainData};
use crate::accumulate::Part;
use crate::data::Dataset;
use crate::data::scheduler::{Order, Stream};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::loss::Batch;

/// A step's batch: rows of the data resident on the device, or a batch streamed from the host.
pub(crate) enum Input<'a> {
    /// Indices of the resident rows.
    Gathered(&'a [u32]),
    /// The rows themselves.
    Streamed(&'a Batch<'a>),
}

impl Input<'_> {
    /// One whole training step of `engine` on this mini-batch.
    pub fn step(self, engine: &mut dyn Engine) -> Result<()> {
        match self {
            Input::Gathered(indices) => engine.step_resident(indices),
            Input::Streamed(batch) => engine.step(batch),
        }
    }

    /// `engine`'s forward and backward on this mini-batch, `part` of its optimizer step's group.
    pub fn accumulate(self, engine: &mut dyn Engine, part: Part) -> Result<()> {
        match self {
            Input::Gathered(indices) => engine.accumulate_resident(indices, part),
            Input::Streamed(batch) => engine.accumulate(batch, part),
        }
    }
}

/// Where each mini-batch comes from: the epoch's permutation of the resident rows, or the
/// producer thread's stream of host batches.
pub(crate) struct Feed {
    order: Order,
    /// The epoch whose permutation is held.
    epoch: Option<u64>,
    permutation: Vec<u32>,
    stream: Option<Stream>,
}

impl Feed {
    /// `count` mini-batches of `order` over `data` from `from` (epoch, mini-batch): gathered by
    /// index when `resident`, else streamed.
    pub fn new(
        data: &TrainData,
        order: Order,
        resident: bool,
        from: (u64, usize),
        count: u64,
    ) -> Self {
        let stream = (!resident).then(|| Stream::start(data.source(), order, from, count, 3));
        Self {
            order,
            epoch: None,
            permutation: Vec::new(),
            stream,
        }
    }

    /// Runs mini-batch number `n` of the run (from 0, across epochs) through `run`.
    pub fn nth(&mut self, n: u64, run: impl FnOnce(Input<'_>) -> Result<()>) -> Result<()> {
        let per_epoch = self.order.batches_per_epoch() as u64;
        self.next(n / per_epoch, (n % per_epoch) as usize, run)
    }

    /// Runs mini-batch `batch` of epoch `epoch` through `run` (mini-batches come in order).
    pub fn next(
        &mut self,
        epoch: u64,
        batch: usize,
        run: impl FnOnce(Input<'_>) -> Result<()>,
    ) -> Result<()> {
        match self.stream.as_mut() {
            None => {
                if self.epoch != Some(epoch) {
                    self.permutation = self.order.permutation(epoch);
                    self.epoch = Some(epoch);
                }
                run(Input::Gathered(self.order.batch(&self.permutation, batch)))
            }
            Some(stream) => {
                let host = stream
                    .next_batch()
                    .ok_or_else(|| Error::Usage("the batch stream ended early".into()))??;
                debug_assert_eq!(host.position, (epoch, batch));
                let result = run(Input::Streamed(&host.batch()));
                stream.recycle(host);
                result
            }
        }
    }
}

/// Makes `data` resident on the device through `load` when `residency` allows: `None` when it
/// is resident, else why it is streamed.
pub(crate) fn place(
    residency: Residency,
    data: &TrainData,
    load: impl FnOnce(Arc<Dataset>) -> Result<()>,
) -> Result<Option<String>> {
    Ok(match (residency, data) {
        (Residency::Streamed, _) => Some("asked for".to_string()),
        (Residency::Auto, TrainData::Mapped(_)) => {
            Some("the features are memory-mapped".to_string())
        }
        (Residency::Auto, TrainData::Memory(d)) => load(Arc::clone(d)).err().map(|e| e.to_string()),
        (Residency::Resident, TrainData::Memory(d)) => load(Arc::clone(d)).map(|()| None)?,
        (Residency::Resident, TrainData::Mapped(_)) => {
            return Err(Error::Usage(
                "memory-mapped data is streamed from disk and cannot be made resident".into(),
            ));
        }
    })
}
