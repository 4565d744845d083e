//! Where each training step's batch comes from: gathered on the device from data resident
//! there, or streamed from the host by the scheduler's producer thread.

use std::sync::Arc;

use crate::data::Dataset;
use crate::data::scheduler::{Order, Stream};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::loss::Batch;
use crate::train::{Residency, TrainData};

/// A step's batch: rows of the data resident on the device, or a batch streamed from the host.
pub(crate) enum Input<'a> {
    /// Indices of the resident rows.
    Gathered(&'a [u32]),
    /// The rows themselves.
    Streamed(&'a Batch<'a>),
}

impl Input<'_> {
    /// One training step of `engine` on this batch.
    pub fn step(self, engine: &mut dyn Engine) -> Result<()> {
        match self {
            Input::Gathered(indices) => engine.step_resident(indices),
            Input::Streamed(batch) => engine.step(batch),
        }
    }
}

/// Where each step's batch comes from: the epoch's permutation of the resident rows, or the
/// producer thread's stream of host batches.
pub(crate) struct Feed {
    order: Order,
    per_epoch: u64,
    permutation: Vec<u32>,
    stream: Option<Stream>,
}

impl Feed {
    /// Batches `first..total` of `order` over `data`: gathered by index when `resident`, else
    /// streamed.
    pub fn new(data: &TrainData, order: Order, resident: bool, first: u64, total: u64) -> Self {
        let per_epoch = order.batches_per_epoch() as u64;
        let stream = (!resident).then(|| {
            let from = (
                first / per_epoch.max(1),
                (first % per_epoch.max(1)) as usize,
            );
            Stream::start(data.source(), order, from, total.saturating_sub(first), 3)
        });
        Self {
            order,
            per_epoch,
            permutation: Vec::new(),
            stream,
        }
    }

    /// Runs step number `step` (from 0) on its batch through `run`.
    pub fn step(&mut self, step: u64, run: impl FnOnce(Input<'_>) -> Result<()>) -> Result<()> {
        let (epoch, batch) = (step / self.per_epoch, (step % self.per_epoch) as usize);
        match self.stream.as_mut() {
            None => {
                if batch == 0 || self.permutation.is_empty() {
                    self.permutation = self.order.permutation(epoch);
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
