//! What a run tells: progress, each epoch's record, each model's run, why it ended, and the
//! observer that hears it.

/// One epoch's results.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRecord {
    /// Epoch number (from 1).
    pub epoch: u64,
    /// Steps taken in the whole run at its end.
    pub step: u64,
    /// Learning rate of its last step.
    pub lr: f64,
    /// Mean training loss over its steps (each measured before that step's update).
    pub train_loss: f64,
    /// Training accuracy, for classification losses.
    pub train_accuracy: Option<f64>,
    /// Validation loss after the epoch.
    pub val_loss: Option<f64>,
    /// Validation accuracy after the epoch.
    pub val_accuracy: Option<f64>,
    /// Wall time of the epoch, seconds.
    pub seconds: f64,
    /// Training rows per second.
    pub samples_per_second: f64,
}

/// A progress report: every `log_every` steps, and at every epoch's end.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Steps taken in the whole run.
    pub step: u64,
    /// Steps the run will take at most.
    pub total_steps: u64,
    /// Current epoch (from 1).
    pub epoch: u64,
    /// Each model's mean training loss since the previous report (NaN for a frozen model).
    pub losses: Vec<f64>,
    /// Training rows per second since the run started (for all models together).
    pub samples_per_second: f64,
    /// Whether the report falls at an epoch's end (where [`Observer::epoch_end`] follows).
    pub epoch_end: bool,
}

impl Progress {
    /// Model 0's mean training loss since the previous report.
    pub fn loss(&self) -> f64 {
        self.losses[0]
    }
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// All epochs (or the step budget) done.
    Completed,
    /// Early stopping; the best parameters were restored.
    EarlyStopping,
    /// The observer asked to stop (Ctrl-C, SIGTERM); a training state was written if a path was
    /// given.
    Interrupted,
}

/// When and how a model diverged.
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    /// The step at whose read-back it was seen.
    pub step: u64,
    /// What was not finite, or grew past the threshold.
    pub what: String,
}

/// One model's run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelRun {
    /// One record per epoch it finished before diverging (a last partial one when a step budget
    /// ends mid-epoch).
    pub epochs: Vec<EpochRecord>,
    /// `(step, mean training loss since the previous point)` at every read-back, for plotting.
    pub curve: Vec<(u64, f64)>,
    /// Set when it diverged (and was frozen).
    pub diverged: Option<Divergence>,
}

impl ModelRun {
    /// The loss that ranks the model: its last validation loss, else its last training loss;
    /// `None` when it diverged or finished no epoch.
    pub fn score(&self) -> Option<f64> {
        if self.diverged.is_some() {
            return None;
        }
        let last = self.epochs.last()?;
        Some(last.val_loss.unwrap_or(last.train_loss)).filter(|l| l.is_finite())
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// Each model's run, in the engine's order.
    pub models: Vec<ModelRun>,
    /// Why it ended.
    pub stop: Stop,
    /// Steps taken in all (including before a resume).
    pub steps: u64,
    /// Whether batches were gathered from data resident on the device.
    pub resident: bool,
    /// With early stopping, the validation loss of the parameters it restored (the best seen,
    /// possibly before a resume).
    pub kept_val_loss: Option<f64>,
    /// Why the last training-state checkpoint could not be written, if it could not (a periodic
    /// one is tried again at the next; the run goes on). When the run was interrupted, the state
    /// of that stop is then not written.
    pub state_failure: Option<String>,
}

impl TrainReport {
    /// Model 0's epochs: a single run's.
    pub fn epochs(&self) -> &[EpochRecord] {
        &self.models[0].epochs
    }
}

/// Where a run starts, and how much it will train.
#[derive(Debug, Clone, PartialEq)]
pub struct Start<'a> {
    /// `None` when the data is resident on the device, else why it is streamed.
    pub streamed_because: Option<&'a str>,
    /// The step it starts from (0, or where a resumed state left off).
    pub first_step: u64,
    /// The step it ends at, at most.
    pub total_steps: u64,
    /// The mini-batches it will feed the engine (`accumulate` of them to a step).
    pub batches: u64,
}

/// Receives the run's progress, for every model of the engine; every method has a default that
/// does nothing.
pub trait Observer {
    /// Before the first step: where the batches come from and how much the run trains.
    fn started(&mut self, _start: &Start<'_>) {}
    /// When resuming: the training state was saved with data whose fingerprint (see
    /// [`Source::checksum`](crate::data::scheduler::Source::checksum)) was `then`, and the data
    /// now has `now`. The run goes on.
    fn data_changed(&mut self, _then: &str, _now: &str) {}
    /// Something the run goes on despite, in a sentence.
    fn warning(&mut self, _message: &str) {}
    /// Every `log_every` steps, and at every epoch's end.
    fn progress(&mut self, _progress: &Progress) {}
    /// When model `k` is found diverged and frozen (a single model's run then ends with
    /// [`crate::Error::Diverged`]).
    fn diverged(&mut self, _k: usize, _divergence: &Divergence) {}
    /// At every epoch's end, with the record of each model still training.
    fn epoch_end(&mut self, _records: &[(usize, EpochRecord)]) {}
    /// Polled after every step; `true` stops the run cleanly.
    fn interrupted(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
pub struct Silent;

impl Observer for Silent {}
