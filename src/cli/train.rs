//! `downhill train`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use downhill::checkpoint::ModelCheckpoint;
use downhill::plot::training::training_charts;
use downhill::plot::write_svg;
use downhill::prepare::PreparedRun;
use downhill::rescue::save_model_or_rescue;
use downhill::train::{
    CheckpointPlan, EpochRecord, Observer, Progress, Start, Stop, TrainConfig, train,
};
use downhill::{Error, Loss, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::args::{OptimizerArgs, TrainArgs};
use super::common::{engine, state_path};
use super::metrics_log::MetricsLog;
use super::outputs::{check_distinct, check_outputs, finish, run_inputs};
use super::prepare::{RunFlags, prepare, run_config_of};
use super::signals::StopSignal;
use super::tensorboard::TensorBoardLog;
use crate::cli::output::{errln, outln};

/// What the command reports when it ends.
pub enum Outcome {
    /// Trained to the end (or early-stopped).
    Done,
    /// Stopped by this signal; the training state is at this path.
    Interrupted(PathBuf, usize),
    /// Stopped by this signal, and the state of that stop could not be written; what became of
    /// the model, in a sentence.
    InterruptedWithoutState(usize, String),
}

/// Where the model of a run that stopped without its training state is kept: `--save`, else
/// `interrupted.safetensors` beside the state.
fn stopped_model_path(a: &TrainArgs, state_path: &Path) -> PathBuf {
    a.outputs
        .save
        .clone()
        .unwrap_or_else(|| state_path.with_file_name("interrupted.safetensors"))
}

/// Refuses hyperparameter lists, which only `sweep` and `check` train side by side.
pub fn one_model(lr: &[f64], o: &OptimizerArgs, command: &str) -> Result<()> {
    for (flag, values) in [
        ("--lr", lr),
        ("--momentum", &o.momentum[..]),
        ("--weight-decay", &o.weight_decay[..]),
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
    Ok(())
}

/// What preparing a `train` run reads from its flags.
fn train_flags(a: &TrainArgs) -> RunFlags<'_> {
    RunFlags {
        resume: a.checkpoints.resume.as_deref(),
        quiet: a.outputs.quiet,
        ..RunFlags::of_run(&a.run)
    }
}

/// Prints progress: a bar on a terminal, plain lines otherwise; writes the JSONL log and the
/// TensorBoard events; notes interruptions.
struct Reporter {
    bar: Option<ProgressBar>,
    quiet: bool,
    epochs: u64,
    loss: Loss,
    metrics: MetricsLog,
    tensorboard: TensorBoardLog,
    records: Vec<EpochRecord>,
    interrupted: StopSignal,
}

/// A loss as the summaries print it: five decimals, or scientific notation where those would
/// not show it.
fn loss_text(v: f64) -> String {
    downhill::plot::number::decimal(v, downhill::plot::number::LOSS_PLACES)
}

fn percent(v: Option<f64>) -> String {
    v.map_or(String::new(), |a| format!("{:.2}%", 100.0 * a))
}

impl Observer for Reporter {
    fn started(&mut self, start: &Start<'_>) {
        let (first_step, total_steps) = (start.first_step, start.total_steps);
        self.interrupted.training_started();
        if self.quiet {
            return;
        }
        errln!(
            "data: {} ({} batches, steps {}..{total_steps})",
            match start.streamed_because {
                None => "resident on the device, gathered by index".to_string(),
                Some(why) => format!("streamed from the host, not resident because {why}"),
            },
            start.batches,
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
        // An epoch's end is reported by `epoch_end`.
        if p.epoch_end {
            return;
        }
        self.tensorboard
            .progress(0, p.step, p.loss(), Some(p.samples_per_second));
        if let Some(bar) = &self.bar {
            bar.set_position(p.step);
            bar.set_message(format!(
                "epoch {}/{}  loss {:.4}  {:.0} samples/s",
                p.epoch,
                self.epochs,
                p.loss(),
                p.samples_per_second
            ));
        }
    }

    fn epoch_end(&mut self, records: &[(usize, EpochRecord)]) {
        let Some((_, r)) = records.first() else {
            return;
        };
        let line = format!(
            "epoch {}/{}  step {}  loss {}{}{}{}  lr {:.3e}  {:.0} samples/s",
            r.epoch,
            self.epochs,
            r.step,
            loss_text(r.train_loss),
            r.train_accuracy.map_or(String::new(), |a| format!(
                "  accuracy {}",
                percent(Some(a))
            )),
            r.val_loss
                .map_or(String::new(), |l| format!("  val_loss {}", loss_text(l))),
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
        self.tensorboard.epoch_end(0, r, true);
        self.records.push(r.clone());
    }

    /// Under mpirun, whether any rank received a signal: every rank asks at the same step, so
    /// all of them stop there (mpirun passes Ctrl-C on to every rank, but not at once).
    fn interrupted(&self) -> bool {
        let here = self.interrupted.received().is_some();
        #[cfg(feature = "mpi")]
        if super::ranks::get().is_some() {
            return downhill::distributed::any_rank(here);
        }
        here
    }
}

/// Trains as `a` says; `run_flags` are the flags recorded in each training state.
pub fn run(a: &TrainArgs, interrupted: StopSignal, run_flags: Vec<String>) -> Result<Outcome> {
    let started = std::time::Instant::now();
    let state_path = state_path(
        a.checkpoints.checkpoint.as_deref(),
        a.outputs.save.as_deref(),
    );
    // Under mpirun, rank 0 prints and writes every output; the other ranks train in silence
    // (and never write: not even a rescued model when a file fails them).
    let silent;
    let writer = super::ranks::get().is_none_or(|r| r.rank == 0);
    let a = if writer {
        a
    } else {
        silent = TrainArgs {
            outputs: super::args::OutputArgs {
                quiet: true,
                save: None,
                metrics: None,
                plot: None,
                tensorboard: None,
            },
            ..a.clone()
        };
        &silent
    };
    one_model(&a.run.lr.lr, &a.run.optimizer, "train")?;
    let outputs = [
        ("--save", a.outputs.save.as_deref()),
        // The state's path is checked when a state is asked for; without, one is written only
        // on an interrupt, and a failure then keeps the model another way.
        (
            if a.checkpoints.checkpoint.is_some() {
                "--checkpoint"
            } else {
                "the training state's path (set it with --checkpoint)"
            },
            (a.checkpoints.checkpoint.is_some() || a.checkpoints.checkpoint_every.is_some())
                .then_some(state_path.as_path()),
        ),
        ("--metrics", a.outputs.metrics.as_deref()),
        ("--plot", a.outputs.plot.as_deref()),
        ("--tensorboard", a.outputs.tensorboard.as_deref()),
    ];
    if writer {
        check_outputs(&outputs[..4])?;
    }
    // A state resumed from is rewritten in place, as the run goes on.
    let resumed_in_place = a.checkpoints.resume.as_deref().is_some_and(|resume| {
        let state = std::fs::canonicalize(&state_path).ok();
        std::fs::canonicalize(resume)
            .ok()
            .is_some_and(|r| Some(r) == state)
    });
    let mut inputs = run_inputs(&a.run);
    inputs.push((
        "--resume",
        a.checkpoints
            .resume
            .as_deref()
            .filter(|_| !resumed_in_place),
    ));
    check_distinct(&outputs, &inputs)?;
    if let Some(dir) = &a.outputs.tensorboard {
        downhill::tensorboard::check_log_dir(dir, "--tensorboard")?;
    }
    let PreparedRun {
        epochs,
        resume,
        data,
        validation: val_data,
        setup,
        start,
        standardizer: stats,
        target_standardizer: target_stats,
        ..
    } = prepare(&train_flags(a))?;
    if a.early_stopping.is_some() && val_data.is_none() {
        return Err(Error::Usage(
            "--early-stopping watches the validation loss: give --val-split or validation data"
                .into(),
        ));
    }
    let (model, loss) = (setup.model.clone(), setup.loss);
    let engine = engine(
        &a.run.device,
        setup,
        &start,
        a.run.batches.batch_size.min(data.rows().max(1)),
        a.outputs.quiet,
    )?;

    #[cfg(feature = "mpi")]
    let (engine, step_times) = data_parallel(engine, a, a.outputs.quiet)?;
    let mut engine = engine;
    let config = TrainConfig {
        early_stopping: a.early_stopping,
        checkpoint: Some(CheckpointPlan {
            path: state_path.clone(),
            every_steps: a.checkpoints.checkpoint_every.unwrap_or(0),
            writes: writer,
            standardizer: stats.clone(),
            target_standardizer: target_stats.clone(),
            run_flags: Some(run_flags),
        }),
        ..run_config_of(&a.run, epochs)?
    };
    let mut reporter = Reporter {
        bar: None,
        quiet: a.outputs.quiet,
        epochs,
        loss,
        metrics: match &resume {
            Some(state) => MetricsLog::resumed(a.outputs.metrics.clone(), state.state.steps),
            None => MetricsLog::new(a.outputs.metrics.clone()),
        },
        tensorboard: TensorBoardLog::open(a.outputs.tensorboard.as_deref(), &[String::new()])?,
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
    #[cfg(feature = "mpi")]
    if let Some(times) = &step_times
        && !a.outputs.quiet
    {
        say_step_times(times);
    }
    reporter.interrupted.finishing();
    let trained = |engine: &mut dyn downhill::Engine| -> Result<ModelCheckpoint> {
        Ok(ModelCheckpoint {
            model: model.clone(),
            loss,
            parameters: engine.parameters(0)?,
            standardizer: stats.clone(),
            target_standardizer: target_stats.clone(),
        })
    };
    let report = match report {
        Ok(report) => report,
        // A file that failed mid-run (the data read from disk, say): the model is still in the
        // engine, and is kept where --save asked, or beside the state (never over it).
        Err(e) if !writer => return Err(e),
        Err(e @ Error::Io { .. }) => {
            let rescue_path = stopped_model_path(a, &state_path);
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
    failures.extend(reporter.tensorboard.take_failure());
    if report.stop == Stop::Interrupted {
        let signal = reporter.interrupted.received().unwrap_or_default();
        let Some(why) = report.state_failure.as_ref().filter(|_| writer) else {
            return finish(failures, Outcome::Interrupted(state_path, signal));
        };
        // The model as it stood is kept, where --save asked (or a fallback), though it cannot be
        // resumed.
        let path = stopped_model_path(a, &state_path);
        let kept = match save_model_or_rescue(&path, &trained(engine.as_mut())?) {
            Ok(()) => format!("the model as it stood was saved to {}", path.display()),
            Err(e) => e.to_string(),
        };
        let note = format!(
            "the training state could not be written ({why}), so this run cannot be resumed from \
             here; {kept}"
        );
        return finish(failures, Outcome::InterruptedWithoutState(signal, note));
    }
    if let Some(why) = report.state_failure {
        failures.push(Error::Usage(format!(
            "the last training-state checkpoint could not be written: {why}"
        )));
    }
    // The figures of the model that is saved: the last epoch's, or with early stopping the
    // epoch it kept.
    let kept = match report.kept_val_loss {
        Some(best) => reporter.records.iter().find(|r| r.val_loss == Some(best)),
        None => reporter.records.last(),
    };
    if report.stop == Stop::EarlyStopping && !a.outputs.quiet {
        errln!(
            "early stopping: no improvement in validation loss for {} epochs; kept the best \
             model, {}",
            a.early_stopping.unwrap_or(0),
            kept.map_or("from before this run resumed".into(), |r| format!(
                "from epoch {}",
                r.epoch
            ))
        );
    }
    if let Some(path) = &a.outputs.save {
        match save_model_or_rescue(path, &trained(engine.as_mut())?) {
            Ok(()) if !a.outputs.quiet => errln!("saved {}", path.display()),
            Ok(()) => {}
            Err(e) => failures.push(e),
        }
    }
    if let Some(path) = &a.outputs.plot
        && let Err(e) = plot(path, &reporter.records, loss, val_data.is_some())
    {
        failures.push(e);
    }
    match (kept, report.kept_val_loss) {
        (Some(record), _) => {
            if report.stop == Stop::EarlyStopping {
                outln!("best_epoch {}", record.epoch);
            }
            if let Some(v) = record.val_loss {
                outln!("val_loss {}", loss_text(v));
            }
            if let Some(acc) = record.val_accuracy {
                outln!("val_accuracy {}", percent(Some(acc)));
            } else if record.val_loss.is_none() {
                outln!("train_loss {}", loss_text(record.train_loss));
                if let Some(acc) = record.train_accuracy {
                    outln!("train_accuracy {}", percent(Some(acc)));
                }
            }
        }
        (None, Some(best)) => outln!("val_loss {}", loss_text(best)),
        (None, None) => {}
    }
    outln!("parameters {}", model.parameter_count());
    outln!("wall_seconds {:.2}", started.elapsed().as_secs_f64());
    finish(failures, Outcome::Done)
}

/// `engine` trained data-parallel over the ranks when a launcher started this process among
/// several (summing gradients in buckets of at most `--bucket-mib` MiB, overlapping backward as
/// `--overlap` says, comparing the replicas every `--check-replicas` steps), else as it is. A
/// batch norm's statistics would be each rank's slice's, not the batch's, so it is refused
/// there. Says so on stderr unless `quiet`.
#[cfg(feature = "mpi")]
fn data_parallel(
    engine: Box<dyn downhill::Engine>,
    flags: &TrainArgs,
    quiet: bool,
) -> Result<(Box<dyn downhill::Engine>, Option<StepTimesHandle>)> {
    let (check_replicas, bucket_mib) = (flags.check_replicas, flags.bucket_mib);
    if !(bucket_mib.is_finite() && bucket_mib > 0.0) {
        return Err(Error::Usage(format!(
            "--bucket-mib {bucket_mib}: a bucket holds a positive number of MiB (PyTorch DDP's \
             default is 25)"
        )));
    }
    let Some(rank) = super::ranks::get() else {
        if check_replicas.is_some() {
            errln!("warning: --check-replicas compares the ranks of a run under mpirun; ignored");
        }
        return Ok((engine, None));
    };
    if engine.setup(0).model.has_running_statistics() {
        return Err(Error::Usage(format!(
            "--norm batch under mpirun: each of the {} ranks would normalise by its own slice's \
             statistics, not the batch's; use --norm layer, or train in one process",
            rank.size
        )));
    }
    let overlap = rank.threaded && overlaps(flags.overlap, engine.runs_on_host());
    let parallel = downhill::distributed::DataParallel::new(
        engine,
        (bucket_mib * f64::from(1u32 << 20)).ceil() as usize,
        overlap,
        check_replicas.unwrap_or(0),
    );
    if !quiet {
        let buckets = parallel.buckets();
        errln!(
            "data-parallel: {} ranks, each training a replica on its slice of every batch; rank \
             0 prints and writes; gradients summed in {buckets} bucket{} {}",
            rank.size,
            if buckets == 1 { "" } else { "s" },
            if overlap {
                "while backward runs"
            } else if rank.threaded {
                "as backward hands them over (--overlap on to overlap)"
            } else {
                "as backward hands them over (this MPI lets no second thread call it)"
            }
        );
    }
    let times = parallel.times();
    Ok((Box::new(parallel), Some(times)))
}

/// Whether `--overlap` sums gradients while backward runs, on an engine whose backward runs on
/// the host's cores or not.
#[cfg(feature = "mpi")]
fn overlaps(choice: super::args::OverlapChoice, on_host: bool) -> bool {
    use super::args::OverlapChoice;
    match choice {
        OverlapChoice::Auto => !on_host,
        OverlapChoice::On => true,
        OverlapChoice::Off => false,
    }
}

/// Where a data-parallel rank's time went, read after the run.
#[cfg(feature = "mpi")]
type StepTimesHandle = std::sync::Arc<std::sync::Mutex<downhill::distributed::StepTimes>>;

/// Says on stderr, per step, how rank 0's time was spent in a data-parallel run.
#[cfg(feature = "mpi")]
fn say_step_times(times: &StepTimesHandle) {
    let t = *times.lock().unwrap_or_else(|e| e.into_inner());
    if t.steps == 0 {
        return;
    }
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3 / t.steps as f64;
    let ranks = super::ranks::get().map_or(1, |r| r.size);
    errln!(
        "data-parallel over {ranks} ranks, per step on rank 0: compute {:.3} ms, gradient sum \
         {:.3} ms ({:.3} ms hidden behind backward, {:.3} ms waited for), update {:.3} ms",
        ms(t.compute),
        ms(t.communication),
        ms(t.communication.saturating_sub(t.exposed)),
        ms(t.exposed),
        ms(t.update)
    );
}

/// Train and validation loss against the epoch, and accuracy for classification losses.
fn plot(path: &Path, records: &[EpochRecord], loss: Loss, validation: bool) -> Result<()> {
    write_svg(path, &training_charts(records, loss, validation))
}
