//! How long a run is: epochs of mini-batches, grouped into optimizer steps, and the checks that
//! refuse a run that would train nothing or leave the valid range.

use super::config::{TrainConfig, TrainData};
use crate::data::Dataset;
use crate::data::scheduler::Order;
use crate::engine::Setup;
use crate::error::{Error, Result};
use crate::loss::Batch;

/// Refuses a run length that trains nothing: 0 epochs or 0 steps.
pub fn check_length(epochs: Option<u64>, max_steps: Option<u64>) -> Result<()> {
    if epochs == Some(0) || max_steps == Some(0) {
        return Err(Error::Usage(
            "--epochs 0 or --max-steps 0 trains nothing; give at least 1".into(),
        ));
    }
    Ok(())
}

/// A run cut into optimizer steps: each epoch's `batches` mini-batches in groups of
/// `accumulate`, `steps_per_epoch = ⌈batches / accumulate⌉` (an epoch's last group may be
/// smaller), and `total` steps in all.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunPlan {
    /// The epoch order.
    pub order: Order,
    /// Mini-batches per epoch.
    pub batches: u64,
    /// Mini-batches per optimizer step.
    pub accumulate: u64,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: u64,
    /// Optimizer steps in the run.
    pub total: u64,
}

impl RunPlan {
    /// The plan of `config` over `data`.
    pub fn new(data: &TrainData, config: &TrainConfig) -> Result<Self> {
        check_length(Some(config.epochs), config.max_steps)?;
        if config.accumulate == 0 {
            return Err(Error::Usage(
                "--accumulate 0 makes no step; give at least 1 mini-batch per step".into(),
            ));
        }
        let order = Order::new(
            data.rows(),
            config.batch_size,
            config.shuffle,
            config.drop_last,
            config.seed,
        )?
        .shared(config.share);
        let batches = order.batches_per_epoch() as u64;
        let steps_per_epoch = batches.div_ceil(config.accumulate);
        let total = (config.epochs * steps_per_epoch).min(config.max_steps.unwrap_or(u64::MAX));
        Ok(Self {
            order,
            batches,
            accumulate: config.accumulate,
            steps_per_epoch,
            total,
        })
    }

    /// Step `step`'s epoch, its first mini-batch in that epoch, and how many it has.
    pub fn group(&self, step: u64) -> (u64, usize, usize) {
        let (epoch, group) = (step / self.steps_per_epoch, step % self.steps_per_epoch);
        let first = group * self.accumulate;
        let count = self.accumulate.min(self.batches - first);
        (epoch, first as usize, count as usize)
    }

    /// The rows of step `step`'s group of mini-batches.
    pub fn group_rows(&self, step: u64) -> usize {
        let (_, first, count) = self.group(step);
        (first..first + count)
            .map(|b| self.order.batch_rows(b))
            .sum()
    }

    /// Where step `step` starts: its epoch and first mini-batch.
    pub fn position(&self, step: u64) -> (u64, usize) {
        let (epoch, first, _) = self.group(step);
        (epoch, first)
    }

    /// Mini-batches from step `first` up to step `end`.
    pub fn batches_between(&self, first: u64, end: u64) -> u64 {
        (first..end).map(|s| self.group(s).2 as u64).sum()
    }
}

/// Refuses a schedule that takes `optimizer`'s learning rate out of range within the run (an
/// exponential or step schedule with a factor above 1 grows it every epoch): checked at the last
/// step, where a growing rate is largest, before any step is taken.
pub(crate) fn check_schedule(
    optimizer: &crate::optim::Optimizer,
    config: &TrainConfig,
    per_epoch: u64,
    total: u64,
) -> Result<()> {
    let last = total.saturating_sub(1);
    let lr = config.schedule.lr(optimizer.lr(), last, per_epoch, total);
    crate::engine::check_learning_rate(optimizer, lr).map_err(|e| {
        Error::Usage(format!(
            "the learning-rate schedule reaches {} by step {} of {total}, which is not a valid \
             rate ({e}); choose a factor that keeps it in range",
            crate::error::readable(lr),
            last + 1
        ))
    })
}

/// Refuses training or validation data that does not fit `setup`'s model and loss, naming it.
pub(crate) fn check_data(setup: &Setup, data: &TrainData, val: Option<&Dataset>) -> Result<()> {
    let in_memory = match data {
        TrainData::Memory(d) => Some(d.as_ref()),
        TrainData::Mapped(_) => None,
    };
    for d in in_memory.into_iter().chain(val) {
        Batch::new(d.features.view(), d.targets.view())
            .check(&setup.model, setup.loss)
            .map_err(|e| Error::Data {
                source_name: d.name.clone(),
                message: e.to_string(),
            })?;
    }
    Ok(())
}
