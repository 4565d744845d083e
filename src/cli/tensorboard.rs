//! `--tensorboard DIR`: the run's scalars as TensorBoard event files, one run folder per model.
//! A write that fails (a full disk) is reported at once as a warning and that run's logging
//! stops (a record cut short would end the file for readers anyway); training goes on, and the
//! run exits 1 naming what failed.
//!
//! Tags: `loss/train` (the mean since the previous read-back; `train` logs the epoch's mean at
//! an epoch's end) and `samples_per_second` at every read-back of the training loss;
//! `accuracy/train`, `loss/validation`, `accuracy/validation`, `learning_rate` and
//! `samples_per_second` at every epoch's end.

use std::path::Path;

use downhill::tensorboard::EventWriter;
use downhill::train::EpochRecord;
use downhill::train::sweep::{Grid, Setting};
use downhill::{Error, Result};

use crate::cli::output::errln;

/// One event file per run, or none when the flag is not given.
pub struct TensorBoardLog {
    writers: Vec<Option<EventWriter>>,
    failure: Option<Error>,
}

impl TensorBoardLog {
    /// Event files in `dir/run` for each of `runs` (`dir` itself for a run named ""), or a log
    /// that writes nothing when `dir` is `None`.
    pub fn open(dir: Option<&Path>, runs: &[String]) -> Result<Self> {
        let writers = match dir {
            Some(dir) => runs
                .iter()
                .map(|run| EventWriter::create(&dir.join(run)).map(Some))
                .collect::<Result<_>>()?,
            None => Vec::new(),
        };
        Ok(Self {
            writers,
            failure: None,
        })
    }

    /// Appends `values` at `step` to run `run`'s file, leaving out values that are absent.
    pub fn log(&mut self, run: usize, step: u64, values: &[(&str, Option<f64>)]) {
        let Some(slot) = self.writers.get_mut(run) else {
            return;
        };
        let Some(writer) = slot else {
            return;
        };
        let present: Vec<(&str, f64)> = values
            .iter()
            .filter_map(|&(tag, v)| v.map(|v| (tag, v)))
            .collect();
        if let Err(e) = writer.scalars(step, &present) {
            errln!("warning: {e}; training goes on without logging to it");
            *slot = None;
            self.failure.get_or_insert(e);
        }
    }

    /// Run `run`'s training loss read back at `step`, and the throughput so far.
    pub fn progress(&mut self, run: usize, step: u64, loss: f64, samples_per_second: Option<f64>) {
        self.log(
            run,
            step,
            &[
                ("loss/train", Some(loss)),
                ("samples_per_second", samples_per_second),
            ],
        );
    }

    /// Run `run`'s epoch record, at the step that ended it; with `train_loss`, its mean
    /// training loss too (leave it out where [`TensorBoardLog::progress`] logged the loss read
    /// back at that step).
    pub fn epoch_end(&mut self, run: usize, r: &EpochRecord, train_loss: bool) {
        self.log(
            run,
            r.step,
            &[
                ("loss/train", train_loss.then_some(r.train_loss)),
                ("accuracy/train", r.train_accuracy),
                ("loss/validation", r.val_loss),
                ("accuracy/validation", r.val_accuracy),
                ("learning_rate", Some(r.lr)),
                ("samples_per_second", Some(r.samples_per_second)),
            ],
        );
    }

    /// Why a write failed, if one did.
    pub fn take_failure(&mut self) -> Option<Error> {
        self.failure.take()
    }
}

/// The run folder of sweep model `k` of `models`: its number, learning rate and what else the
/// grid varies (`model-03-lr0.01-m0.9`, `model-12-lr0.1-wd0.0001-seed2`).
pub fn run_name(k: usize, models: usize, setting: &Setting, grid: &Grid) -> String {
    let width = (models.saturating_sub(1)).to_string().len().max(2);
    let mut name = format!("model-{k:0width$}-lr{}", setting.lr);
    if let Some(m) = setting.momentum {
        name += &format!("-m{m}");
    }
    if let Some(wd) = setting.weight_decay {
        name += &format!("-wd{wd}");
    }
    if grid.restarts > 1 {
        name += &format!("-seed{}", setting.seed);
    }
    name
}
