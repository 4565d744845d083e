//! `downhill sweep`.

use std::io::IsTerminal;

use downhill::checkpoint::ModelCheckpoint;
use downhill::data::scheduler::Share;
use downhill::plot::number::{LOSS_PLACES, decimal};
use downhill::plot::sweep::sweep_chart;
use downhill::plot::write_svg;
use downhill::prepare::PreparedRun;
use downhill::rescue::save_model_or_rescue;
use downhill::train::sweep::{Grid, RESTARTS_FROM_ONE_START, Setting, SweepReport, sweep};
use downhill::train::{Divergence, EpochRecord, Observer, Progress, Start, TrainConfig};
use downhill::{CpuEngine, Engine, Error, GpuEngine, Loss, PackSetup, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::args::{CheckFormat, SweepArgs};
use super::common::on_device;
use super::metrics_log::MetricsLog;
use super::outputs::{check_distinct, check_outputs, finish, run_inputs};
use super::prepare::{RunFlags, prepare, run_config_of};
use super::signals::StopSignal;
use super::sweep_ranks::{self, Gathered};
use super::tensorboard::{TensorBoardLog, run_name};
use crate::cli::output::{errln, outln};

/// Where the best model goes when --save is not given.
const DEFAULT_SAVE: &str = "sweep-best.safetensors";

/// How the command ended.
pub enum Outcome {
    /// Every model ran to the end (or diverged).
    Done,
    /// Stopped early by this signal; the results so far were reported.
    Interrupted(usize),
}

/// Prints epoch summaries and divergences to stderr, with a bar on a terminal; writes the JSONL
/// log and each model's TensorBoard events.
struct Reporter {
    bar: Option<ProgressBar>,
    quiet: bool,
    epochs: u64,
    /// The grid's index of this process's first model (under mpirun, its share's first).
    first: usize,
    /// The grid's models, on every rank.
    grid_models: usize,
    /// The label of each model this process trains.
    labels: Vec<String>,
    loss: Loss,
    metrics: MetricsLog,
    tensorboard: TensorBoardLog,
    interrupted: StopSignal,
}

impl Reporter {
    fn say(&self, line: String) {
        match (&self.bar, self.quiet) {
            (Some(bar), _) => bar.println(line),
            (None, false) => errln!("{line}"),
            (None, true) => {}
        }
    }
}

impl Observer for Reporter {
    fn started(&mut self, start: &Start<'_>) {
        let (streamed_because, total_steps) = (start.streamed_because, start.total_steps);
        self.interrupted.training_started();
        if self.quiet {
            return;
        }
        let ranks = super::ranks::get().map_or(String::new(), |r| {
            format!(
                " on rank 0 (models {} to {} of {}, the grid split over {} ranks)",
                self.first,
                self.first + self.labels.len() - 1,
                self.grid_models,
                r.size
            )
        });
        errln!(
            "sweep: {} models side by side{ranks}, {total_steps} steps; data {}",
            self.labels.len(),
            match streamed_because {
                None => "resident on the device".to_string(),
                Some(why) => format!("streamed from the host ({why})"),
            }
        );
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total_steps);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            self.bar = Some(bar);
        }
    }

    fn progress(&mut self, p: &Progress) {
        let (step, losses) = (p.step, &p.losses);
        // NaN marks a frozen model.
        for (k, &loss) in losses.iter().enumerate().filter(|(_, l)| !l.is_nan()) {
            self.tensorboard.progress(k, step, loss, None);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(step);
            let best = losses
                .iter()
                .copied()
                .filter(|l| l.is_finite())
                .fold(f64::INFINITY, f64::min);
            bar.set_message(format!("lowest loss {best:.4}"));
        }
    }

    fn diverged(&mut self, k: usize, d: &Divergence) {
        self.say(format!(
            "model {} ({}) diverged at step {}: {}; frozen, the others go on",
            self.first + k,
            self.labels[k],
            d.step,
            d.what
        ));
    }

    fn epoch_end(&mut self, records: &[(usize, EpochRecord)]) {
        // The loss read back at the epoch's end went to TensorBoard with `progress`.
        for (k, r) in records {
            self.tensorboard.epoch_end(*k, r, false);
        }
        let Some((epoch, step)) = records.first().map(|(_, r)| (r.epoch, r.step)) else {
            return;
        };
        let score = |r: &EpochRecord| r.val_loss.unwrap_or(r.train_loss);
        if let Some((k, r)) = records
            .iter()
            .min_by(|a, b| score(&a.1).total_cmp(&score(&b.1)))
        {
            self.say(format!(
                "epoch {epoch}/{}  step {step}  {} training  lowest {} {} (model {}: {})",
                self.epochs,
                records.len(),
                if r.val_loss.is_some() {
                    "val_loss"
                } else {
                    "loss"
                },
                downhill::plot::number::decimal(score(r), downhill::plot::number::LOSS_PLACES),
                self.first + k,
                self.labels[*k]
            ));
        }
        self.metrics.extend(
            records
                .iter()
                .map(|(k, r)| metrics_line(self.first + k, &self.labels[*k], r, self.loss)),
        );
    }

    fn interrupted(&self) -> bool {
        self.interrupted.received().is_some()
    }
}

/// Model `k`'s line in the JSONL metrics log for its epoch `r`.
fn metrics_line(k: usize, label: &str, r: &EpochRecord, loss: Loss) -> String {
    json!({
        "model": k, "label": label, "epoch": r.epoch, "step": r.step,
        "lr": r.lr, "train_loss": r.train_loss, "train_accuracy": r.train_accuracy,
        "val_loss": r.val_loss, "val_accuracy": r.val_accuracy, "seconds": r.seconds,
        "loss": loss.name(),
    })
    .to_string()
}

/// Writes every model's epochs to the metrics log and its loss curve and epochs to TensorBoard,
/// once the ranks' runs are gathered (under mpirun, where no rank logs as it trains).
fn log_gathered(
    report: &SweepReport,
    labels: &[String],
    loss: Loss,
    metrics: &mut MetricsLog,
    tensorboard: &mut TensorBoardLog,
) {
    let epochs = report
        .models
        .iter()
        .map(|m| m.epochs.len())
        .max()
        .unwrap_or(0);
    for e in 0..epochs {
        metrics.extend(report.models.iter().enumerate().filter_map(|(k, m)| {
            m.epochs
                .get(e)
                .map(|r| metrics_line(k, &labels[k], r, loss))
        }));
    }
    for (k, m) in report.models.iter().enumerate() {
        for &(step, value) in &m.curve {
            tensorboard.progress(k, step, value, None);
        }
        for r in &m.epochs {
            tensorboard.epoch_end(k, r, false);
        }
    }
}

/// The engine the flags ask for: every model on one GPU, or one after another on the CPU.
fn pack(a: &SweepArgs, setup: PackSetup, max_batch: usize) -> Result<Box<dyn Engine>> {
    on_device(
        &a.run.device,
        a.outputs.quiet,
        (
            ", one model after another",
            &format!(
                " ({} models packed into each dispatch)",
                setup.members.len()
            ),
        ),
        || Ok(Box::new(CpuEngine::pack(&setup)?) as Box<dyn Engine>),
        |ctx| Ok(Box::new(GpuEngine::pack(ctx, setup.clone(), max_batch)?) as Box<dyn Engine>),
    )
}

fn format_option(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or("-".into(), f)
}

fn print_table(report: &SweepReport, settings: &[Setting], grid: &Grid) {
    let mut header = format!("{:>3}  {:>10}", "#", "lr");
    if !grid.momentum.is_empty() {
        header += &format!("  {:>8}", "momentum");
    }
    if !grid.weight_decay.is_empty() {
        header += &format!("  {:>12}", "weight_decay");
    }
    header += &format!(
        "  {:>5}  {:>11}  {:>9}  {:>11}  {:>9}  status",
        "seed", "train_loss", "train_acc", "val_loss", "val_acc"
    );
    outln!("{header}");
    let percent = |v: f64| format!("{:.2}%", 100.0 * v);
    let loss_cell = |l: f64| decimal(l, LOSS_PLACES);
    for (k, (run, s)) in report.models.iter().zip(settings).enumerate() {
        let last = run.epochs.last();
        let mut line = format!("{k:>3}  {:>10}", format!("{:e}", s.lr));
        if !grid.momentum.is_empty() {
            line += &format!("  {:>8}", format_option(s.momentum, |m| m.to_string()));
        }
        if !grid.weight_decay.is_empty() {
            line += &format!("  {:>12}", format_option(s.weight_decay, |w| w.to_string()));
        }
        let status = match (&run.diverged, report.best == Some(k)) {
            (Some(d), _) => format!("diverged at step {}", d.step),
            (None, true) => "best".into(),
            (None, false) => "ok".into(),
        };
        line += &format!(
            "  {:>5}  {:>11}  {:>9}  {:>11}  {:>9}  {status}",
            s.seed,
            format_option(last.map(|r| r.train_loss), loss_cell),
            format_option(last.and_then(|r| r.train_accuracy), percent),
            format_option(last.and_then(|r| r.val_loss), loss_cell),
            format_option(last.and_then(|r| r.val_accuracy), percent),
        );
        outln!("{line}");
    }
}

fn print_json(report: &SweepReport, settings: &[Setting], saved: Option<&std::path::Path>) {
    let models: Vec<_> = report
        .models
        .iter()
        .zip(settings)
        .enumerate()
        .map(|(k, (run, s))| {
            let last = run.epochs.last();
            json!({
                "index": k, "lr": s.lr, "momentum": s.momentum, "weight_decay": s.weight_decay,
                "seed": s.seed,
                "train_loss": last.map(|r| r.train_loss),
                "train_accuracy": last.and_then(|r| r.train_accuracy),
                "val_loss": last.and_then(|r| r.val_loss),
                "val_accuracy": last.and_then(|r| r.val_accuracy),
                "diverged": run.diverged.as_ref().map(|d| json!({"step": d.step, "what": d.what})),
                "epochs": run.epochs.iter().map(|r| json!({
                    "epoch": r.epoch, "step": r.step, "lr": r.lr, "train_loss": r.train_loss,
                    "train_accuracy": r.train_accuracy, "val_loss": r.val_loss,
                    "val_accuracy": r.val_accuracy,
                })).collect::<Vec<_>>(),
                "curve": run.curve,
            })
        })
        .collect();
    let value = json!({
        "models": models, "best": report.best, "steps": report.steps,
        "saved": saved.map(|p| p.display().to_string()), "version": env!("CARGO_PKG_VERSION"),
    });
    outln!("{value:#}");
}

/// One loss curve per model against the step (see [`sweep_chart`]).
fn plot(
    path: &std::path::Path,
    report: &SweepReport,
    settings: &[Setting],
    grid: &Grid,
    loss: Loss,
) -> Result<()> {
    write_svg(path, &[sweep_chart(report, settings, grid, loss)])
}

/// `downhill sweep`: trains every model of the grid side by side, reports them and saves the
/// best.
pub fn run(args: &SweepArgs, interrupted: StopSignal) -> Result<Outcome> {
    let a = args;
    if a.restarts == 0 {
        return Err(Error::Usage("--restarts must be at least 1".into()));
    }
    if a.run.init.init.is_some() && a.restarts > 1 {
        return Err(Error::Usage(RESTARTS_FROM_ONE_START.into()));
    }
    let save = a
        .outputs
        .save
        .clone()
        .unwrap_or_else(|| DEFAULT_SAVE.into());
    let outputs = [
        ("--save", Some(save.as_path())),
        ("--metrics", a.outputs.metrics.as_deref()),
        ("--plot", a.outputs.plot.as_deref()),
        ("--tensorboard", a.outputs.tensorboard.as_deref()),
    ];
    check_outputs(&outputs[..3])?;
    check_distinct(&outputs, &run_inputs(&a.run))?;
    // Under mpirun, rank 0 alone reports and writes.
    let rank0 = super::ranks::get().is_none_or(|r| r.rank == 0);
    if let Some(dir) = a.outputs.tensorboard.as_ref().filter(|_| rank0) {
        downhill::tensorboard::check_log_dir(dir, "--tensorboard")?;
    }
    let PreparedRun {
        epochs,
        data,
        validation: val_data,
        setup,
        start,
        standardizer: stats,
        target_standardizer: target_stats,
        ..
    } = prepare(&RunFlags {
        restarts: a.restarts,
        quiet: a.outputs.quiet,
        ..RunFlags::of_run(&a.run)
    })?;
    let grid = Grid {
        lr: a.run.lr.lr.clone(),
        momentum: a.run.optimizer.momentum.clone(),
        weight_decay: a.run.optimizer.weight_decay.clone(),
        restarts: a.restarts,
        seed: a.run.batches.seed,
    };
    let members = grid.members(
        &setup.optimizer,
        &setup.model,
        a.run.init.init.as_ref().map(|_| &start),
    )?;
    let (settings, mut members): (Vec<_>, Vec<_>) = members.into_iter().unzip();
    let labels: Vec<String> = settings.iter().map(|s| s.label(&grid)).collect();
    let (model, loss) = (setup.model.clone(), setup.loss);
    // Under mpirun, this rank's share of the models, trained on every row; rank 0 logs them
    // all once they are gathered.
    let share = sweep_ranks::share(members.len())?;
    let ranked = super::ranks::get().is_some();
    let members: Vec<_> = members.drain(share.clone()).collect();
    let names: Vec<String> = settings
        .iter()
        .enumerate()
        .map(|(k, s)| run_name(k, settings.len(), s, &grid))
        .collect();
    let mut pack = pack(
        a,
        PackSetup {
            model: model.clone(),
            loss,
            members,
        },
        a.run.batches.batch_size.min(data.rows().max(1)),
    )?;
    let config = TrainConfig {
        share: Share::WHOLE,
        ..run_config_of(&a.run, epochs)?
    };
    let live = |path: Option<&std::path::Path>| path.filter(|_| !ranked).map(Into::into);
    let mut reporter = Reporter {
        bar: None,
        quiet: a.outputs.quiet || !rank0,
        epochs,
        first: share.start,
        grid_models: settings.len(),
        labels: labels[share.clone()].to_vec(),
        loss,
        metrics: MetricsLog::new(live(a.outputs.metrics.as_deref())),
        tensorboard: TensorBoardLog::open(
            live(a.outputs.tensorboard.as_deref()).as_deref(),
            &names[share.clone()],
        )?,
        interrupted,
    };
    let report = sweep(
        pack.as_mut(),
        &data,
        val_data.as_ref(),
        &config,
        &mut reporter,
    );
    if let Some(bar) = &reporter.bar {
        bar.finish_and_clear();
    }
    reporter.interrupted.finishing();
    let report = report?;
    let interrupted = sweep_ranks::interrupted_anywhere(reporter.interrupted.received());
    let Some(Gathered {
        report,
        best_parameters,
    }) = sweep_ranks::gather(report, share, settings.len(), pack.as_mut())?
    else {
        // A rank other than 0: its runs went to rank 0, which writes every output.
        return Ok(interrupted.map_or(Outcome::Done, Outcome::Interrupted));
    };
    if ranked {
        reporter.metrics = MetricsLog::new(a.outputs.metrics.clone());
        reporter.tensorboard = TensorBoardLog::open(a.outputs.tensorboard.as_deref(), &names)?;
        log_gathered(
            &report,
            &labels,
            loss,
            &mut reporter.metrics,
            &mut reporter.tensorboard,
        );
    }
    // One output that fails never costs another.
    let mut failures: Vec<Error> = reporter.metrics.take_failure().into_iter().collect();
    failures.extend(reporter.tensorboard.take_failure());
    if let Some(path) = &a.outputs.plot
        && let Err(e) = plot(path, &report, &settings, &grid, loss)
    {
        failures.push(e);
    }
    let saved = match best_parameters {
        Some(parameters) => {
            let best_model = ModelCheckpoint {
                model,
                loss,
                parameters,
                standardizer: stats,
                target_standardizer: target_stats,
            };
            match save_model_or_rescue(&save, &best_model) {
                Ok(()) => Some(save),
                Err(e) => {
                    failures.push(e);
                    None
                }
            }
        }
        None => None,
    };
    match args.format {
        CheckFormat::Table => print_table(&report, &settings, &grid),
        CheckFormat::Json => print_json(&report, &settings, saved.as_deref()),
    }
    let Some(best) = report.best else {
        if let Some(signal) = interrupted {
            return finish(failures, Outcome::Interrupted(signal));
        }
        failures.push(Error::Usage(format!(
            "every one of the {} models diverged; try smaller learning rates",
            report.models.len()
        )));
        return finish(failures, Outcome::Done);
    };
    if !a.outputs.quiet {
        errln!(
            "best: model {best} ({}){}",
            labels[best],
            saved
                .as_ref()
                .map_or(String::new(), |path| format!("; saved {}", path.display()))
        );
    }
    finish(
        failures,
        interrupted.map_or(Outcome::Done, Outcome::Interrupted),
    )
}
