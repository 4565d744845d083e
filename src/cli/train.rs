//! `downhill train`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use downhill::checkpoint::ModelCheckpoint;
use downhill::plot::{Chart, Series, write_svg};
use downhill::rescue::save_model_or_rescue;
use downhill::train::{
    CheckpointPlan, EpochRecord, Observer, Progress, Stop, TrainConfig, TrainData, train,
};
use downhill::{Error, Loss, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::args::TrainArgs;
use super::common::{engine, state_path_for};
use super::metrics_log::MetricsLog;
use super::outputs::{check_outputs, finish};
use super::prepare::{Prepared, prepare, run_config};
use super::signals::StopSignal;
use crate::cli::output::{errln, outln};

/// What the command reports when it ends.
pub enum Outcome {
    /// Trained to the end (or early-stopped).
    Done,
    /// Stopped by this signal; the training state is at this path.
    Interrupted(PathBuf, usize),
}

/// Refuses hyperparameter lists and restarts, which only `sweep` and `check` train.
pub fn one_model(a: &TrainArgs, command: &str) -> Result<()> {
    for (flag, values) in [
        ("--lr", &a.lr),
        ("--momentum", &a.momentum),
        ("--weight-decay", &a.weight_decay),
    ] {
        if values.len() > 1 {
            return Err(Error::Usage(format!(
                "{command} trains one model, so {flag} takes one value; to train one model per \
                 value side by side, use `downhill sweep {flag} {}`",
                values
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            )));
        }
    }
    if a.restarts != 1 {
        return Err(Error::Usage(format!(
            "{command} trains one model; to train --restarts {} initialisations side by side, use \
             `downhill sweep`",
            a.restarts
        )));
    }
    Ok(())
}

/// Prints progress: a bar on a terminal, plain lines otherwise; writes the JSONL log; notes
/// interruptions.
struct Reporter {
    bar: Option<ProgressBar>,
    quiet: bool,
    epochs: u64,
    loss: Loss,
    metrics: MetricsLog,
    records: Vec<EpochRecord>,
    interrupted: StopSignal,
}

fn percent(v: Option<f64>) -> String {
    v.map_or(String::new(), |a| format!("{:.2}%", 100.0 * a))
}

impl Observer for Reporter {
    fn started(&mut self, streamed_because: Option<&str>, first_step: u64, total_steps: u64) {
        self.interrupted.training_started();
        if self.quiet {
            return;
        }
        errln!(
            "data: {} ({} batches, steps {}..{total_steps})",
            match streamed_because {
                None => "resident on the device, gathered by index".to_string(),
                Some(why) => format!("streamed from the host, not resident because {why}"),
            },
            total_steps - first_step,
            first_step + 1,
        );
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total_steps);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_position(first_step);
            self.bar = Some(bar);
        }
    }

    fn warning(&mut self, message: &str) {
        errln!("warning: {message}");
    }

    fn data_changed(&mut self, then: &str, now: &str) {
        errln!(
            "warning: the training data differs from the data the training state was saved with \
             ({then} then, {now} now); resuming anyway"
        );
    }

    fn progress(&mut self, p: &Progress) {
        if let Some(bar) = &self.bar {
            bar.set_position(p.step);
            bar.set_message(format!(
                "epoch {}/{}  loss {:.4}  {:.0} samples/s",
                p.epoch, self.epochs, p.loss, p.samples_per_second
            ));
        }
    }

    fn epoch_end(&mut self, r: &EpochRecord) {
        let line = format!(
            "epoch {}/{}  step {}  loss {:.5}{}{}{}  lr {:.3e}  {:.0} samples/s",
            r.epoch,
            self.epochs,
            r.step,
            r.train_loss,
            r.train_accuracy.map_or(String::new(), |a| format!(
                "  accuracy {}",
                percent(Some(a))
            )),
            r.val_loss
                .map_or(String::new(), |l| format!("  val_loss {l:.5}")),
            r.val_accuracy.map_or(String::new(), |a| format!(
                "  val_accuracy {}",
                percent(Some(a))
            )),
            r.lr,
            r.samples_per_second,
        );
        match (&self.bar, self.quiet) {
            (Some(bar), _) => {
                bar.set_position(r.step);
                bar.println(line);
            }
            (None, false) => errln!("{line}"),
            (None, true) => {}
        }
        self.metrics.extend([json!({
            "epoch": r.epoch, "step": r.step, "lr": r.lr, "train_loss": r.train_loss,
            "train_accuracy": r.train_accuracy, "val_loss": r.val_loss, "val_accuracy": r.val_accuracy,
            "seconds": r.seconds, "samples_per_second": r.samples_per_second, "loss": self.loss.name(),
        })
        .to_string()]);
        self.records.push(r.clone());
    }

    fn interrupted(&self) -> bool {
        self.interrupted.received().is_some()
    }
}

pub fn run(a: &TrainArgs, interrupted: StopSignal) -> Result<Outcome> {
    one_model(a, "train")?;
    let state_path = a
        .checkpoint
        .clone()
        .or_else(|| a.save.as_deref().map(state_path_for))
        .unwrap_or_else(|| "downhill.state.safetensors".into());
    check_outputs(&[
        ("--save", a.save.as_deref()),
        ("--checkpoint", Some(&state_path)),
        ("--metrics", a.metrics.as_deref()),
        ("--plot", a.plot.as_deref()),
    ])?;
    let Prepared {
        epochs,
        resume,
        mapped,
        train_data,
        val_data,
        setup,
        start,
        stats,
    } = prepare(a)?;
    if a.early_stopping.is_some() && val_data.is_none() {
        return Err(Error::Usage(
            "--early-stopping watches the validation loss: give --val-split or validation data"
                .into(),
        ));
    }
    let (model, loss) = (setup.model.clone(), setup.loss);
    let mut engine = engine(
        &a.device,
        setup,
        &start,
        a.batch_size.min(train_data.rows().max(1)),
        a.quiet,
    )?;

    let data = match mapped {
        Some(source) => TrainData::Mapped(Arc::new(source)),
        None => TrainData::Memory(Arc::new(train_data)),
    };
    let config = TrainConfig {
        early_stopping: a.early_stopping,
        checkpoint: Some(CheckpointPlan {
            path: state_path.clone(),
            every_steps: a.checkpoint_every.unwrap_or(0),
            standardizer: stats.clone(),
        }),
        ..run_config(a, epochs)?
    };
    let mut reporter = Reporter {
        bar: None,
        quiet: a.quiet,
        epochs,
        loss,
        metrics: MetricsLog::new(a.metrics.clone()),
        records: Vec::new(),
        interrupted,
    };
    let report = train(
        engine.as_mut(),
        &data,
        val_data.as_ref(),
        &config,
        resume.as_ref(),
        &mut reporter,
    );
    if let Some(bar) = &reporter.bar {
        bar.finish_and_clear();
    }
    let trained = |engine: &mut dyn downhill::Engine| -> Result<ModelCheckpoint> {
        Ok(ModelCheckpoint {
            model: model.clone(),
            loss,
            parameters: engine.parameters()?,
            standardizer: stats.clone(),
        })
    };
    let report = match report {
        Ok(report) => report,
        // A training state that could not be written: the model is still in the engine.
        Err(e @ Error::Io { .. }) => {
            let rescue_path = a.save.clone().unwrap_or_else(|| state_path.clone());
            return Err(
                match save_model_or_rescue(&rescue_path, &trained(engine.as_mut())?) {
                    Ok(()) => Error::NotSaved {
                        failure: Box::new(e),
                        outcome: format!(
                            "the model as it stood was saved to {}",
                            rescue_path.display()
                        ),
                    },
                    Err(rescued) => Error::NotSaved {
                        failure: Box::new(e),
                        outcome: rescued.to_string(),
                    },
                },
            );
        }
        Err(e) => return Err(e),
    };
    // One output that fails never costs another: each is tried, and the failures reported at
    // the end.
    let mut failures: Vec<Error> = reporter.metrics.take_failure().into_iter().collect();
    if report.stop == Stop::Interrupted {
        let signal = reporter.interrupted.received().unwrap_or_default();
        return finish(failures, Outcome::Interrupted(state_path, signal));
    }
    if report.stop == Stop::EarlyStopping && !a.quiet {
        errln!(
            "early stopping: no improvement in validation loss for {} epochs; kept the best model",
            a.early_stopping.unwrap_or(0)
        );
    }
    if let Some(path) = &a.save {
        match save_model_or_rescue(path, &trained(engine.as_mut())?) {
            Ok(()) if !a.quiet => errln!("saved {}", path.display()),
            Ok(()) => {}
            Err(e) => failures.push(e),
        }
    }
    if let Some(path) = &a.plot
        && let Err(e) = plot(path, &reporter.records, loss, val_data.is_some())
    {
        failures.push(e);
    }
    if let Some(last) = reporter.records.last() {
        if let Some(v) = last.val_loss {
            outln!("val_loss {v:.5}");
        }
        if let Some(acc) = last.val_accuracy {
            outln!("val_accuracy {}", percent(Some(acc)));
        } else if last.val_loss.is_none() {
            outln!("train_loss {:.5}", last.train_loss);
        }
    }
    finish(failures, Outcome::Done)
}

/// Train and validation loss against the epoch.
fn plot(path: &Path, records: &[EpochRecord], loss: Loss, validation: bool) -> Result<()> {
    let curve = |name: &str, f: &dyn Fn(&EpochRecord) -> Option<f64>| Series {
        name: name.to_string(),
        points: records
            .iter()
            .filter_map(|r| f(r).map(|y| (r.epoch as f64, y)))
            .collect(),
    };
    let mut series = vec![curve("train loss", &|r| Some(r.train_loss))];
    if validation {
        series.push(curve("validation loss", &|r| r.val_loss));
    }
    write_svg(
        path,
        &[Chart {
            title: format!("{} loss", loss.name()),
            x_label: "epoch".into(),
            y_label: "loss (mean per sample)".into(),
            series,
            log_x: false,
            log_y: false,
        }],
    )
}
