//! `downhill train`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use downhill::checkpoint::{ModelCheckpoint, load_init, load_state};
use downhill::data::load::{adapt_targets, outputs_for};
use downhill::data::mapped::MappedNpy;
use downhill::data::{Dataset, Standardizer};
use downhill::fsio::check_output;
use downhill::optim::LrSchedule;
use downhill::plot::{Chart, Series, write_svg};
use downhill::rescue::save_model_or_rescue;
use downhill::train::{
    CheckpointPlan, EpochRecord, Observer, Progress, Residency, Stop, TrainConfig, TrainData, train,
};
use downhill::{Activation, Error, Loss, ModelSpec, Parameters, Result, Setup, Targets};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::args::{DeviceChoice, ResidencyChoice, TrainArgs};
use super::common::{dataset, engine, state_path_for};
use super::metrics_log::MetricsLog;
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

/// Everything a run needs before an engine exists: data, validation, model, loss, optimizer,
/// starting parameters and feature statistics, as the flags describe them.
pub struct Prepared {
    pub epochs: u64,
    pub resume: Option<downhill::checkpoint::TrainingState>,
    /// The training features, memory-mapped, when they stream from disk (then `train_data`
    /// holds only the targets).
    pub mapped: Option<MappedNpy>,
    pub train_data: Dataset,
    pub val_data: Option<Dataset>,
    pub setup: Setup,
    pub start: Parameters,
    pub stats: Option<Standardizer>,
}

/// Loads and fits together what the flags name (shared by `train` and `check`).
pub fn prepare(a: &TrainArgs) -> Result<Prepared> {
    if a.batch_size == 0 {
        return Err(Error::Usage("--batch-size must be at least 1".into()));
    }
    if a.epochs == Some(0) || a.max_steps == Some(0) {
        return Err(Error::Usage(
            "--epochs 0 or --max-steps 0 trains nothing; give at least 1".into(),
        ));
    }
    let default_run = !a.data.given();
    let standardize_features = a.standardize || default_run;
    let epochs = a.epochs.unwrap_or(if default_run { 30 } else { 10 });
    let data_args = if default_run {
        super::args::DataArgs {
            dataset: Some("digits".into()),
            ..a.data.clone()
        }
    } else {
        a.data.clone()
    };
    if default_run && !a.quiet {
        errln!(
            "data: built-in digits (1,797 8x8 images, 10 classes), standardised, 20% held out for validation"
        );
    }
    let resume = a.resume.as_deref().map(load_state).transpose()?;
    let mut init = resume.as_ref().map(|state| state.checkpoint.clone());

    // Data: the training rows, then validation (a file, or a seeded split).
    let mut mapped = None;
    let (mut train_data, feature_cols) = if a.data.mmap || too_large_for_memory(&a.data, a.quiet) {
        let (Some(features), Some(targets)) = (&a.data.features, &a.data.targets) else {
            return Err(Error::Usage(
                "--mmap streams a --features .npy file: give --features and --targets".into(),
            ));
        };
        // Only the targets are read whole; the features stay on disk.
        let targets = downhill::data::load::load_targets(targets)?;
        let rows = targets.rows();
        let source = MappedNpy::open(features, targets.clone())?;
        let cols = source.cols();
        mapped = Some(source);
        // The targets alone; batches of features come from the mapped file.
        Dataset::new(
            features.display().to_string(),
            ndarray::Array2::zeros((rows, 0)),
            targets,
        )
        .map(|d| (d, cols))?
    } else {
        let d = dataset(&data_args, a.seed)?.expect("a data source is always named here");
        let cols = d.features.ncols();
        (d, cols)
    };
    let val_files = super::args::DataArgs {
        features: a.val_features.clone(),
        targets: a.val_targets.clone(),
        data: a.val_data.clone(),
        target_column: a.data.target_column.clone(),
        no_header: a.data.no_header,
        drop_nonfinite: a.data.drop_nonfinite,
        ..Default::default()
    };
    let mut val_data = dataset(&val_files, a.seed)?;
    let split = a
        .val_split
        .or((default_run && val_data.is_none()).then_some(0.2));
    if let Some(fraction) = split {
        if val_data.is_some() {
            return Err(Error::Usage(
                "give either --val-split or validation files, not both".into(),
            ));
        }
        if mapped.is_some() {
            return Err(Error::Usage("--val-split needs the features in memory, and these are memory-mapped (--mmap, or too large for memory): give --val-features/--val-targets".into()));
        }
        let (t, v) = train_data.split(fraction, a.seed)?;
        train_data = t;
        val_data = Some(v);
    }

    // The loss, the model and the targets fitted to them.
    let hidden: Activation = a.activation.parse()?;
    let requested: Option<Loss> = a.loss.as_deref().map(str::parse).transpose()?;
    let by_targets = if matches!(train_data.targets, Targets::Classes(_)) {
        Loss::CrossEntropy
    } else {
        Loss::Mse
    };
    if init.is_none()
        && let Some(path) = &a.init
    {
        init = Some(load_init(path, hidden, requested.unwrap_or(by_targets))?.0);
    }
    let loss = requested
        .or(init.as_ref().map(|c| c.loss))
        .unwrap_or(by_targets);
    let model = match &init {
        Some(c) => {
            if !a.layers.is_empty() && a.layers != widths(&c.model) {
                let source = match (&a.resume, &a.init) {
                    (Some(p), _) => format!("--resume checkpoint {}", p.display()),
                    (None, Some(p)) => format!("--init checkpoint {}", p.display()),
                    (None, None) => "starting checkpoint".into(),
                };
                return Err(Error::InvalidModel(format!(
                    "--layers {:?} differs from the architecture of the {source}, {:?}; drop \
                     --layers or give the layers it was trained with",
                    a.layers,
                    widths(&c.model)
                )));
            }
            c.model.clone()
        }
        None if a.layers.is_empty() => ModelSpec::from_widths(
            &[feature_cols, 64, outputs_for(&train_data.targets, loss)],
            hidden,
            Activation::Identity,
        )?,
        None => ModelSpec::from_widths(&a.layers, hidden, Activation::Identity)?,
    };
    if model.inputs() != feature_cols {
        return Err(Error::InvalidModel(format!(
            "the model takes {} inputs but {} has {feature_cols} feature columns; the first --layers width must be {feature_cols}",
            model.inputs(),
            train_data.name
        )));
    }
    train_data.targets =
        adapt_targets(train_data.targets, loss, model.outputs(), &train_data.name)?;
    if let Some(v) = &mut val_data {
        v.targets = adapt_targets(
            std::mem::replace(&mut v.targets, Targets::Classes(vec![])),
            loss,
            model.outputs(),
            &v.name,
        )?;
    }
    // Feature statistics: the starting checkpoint's, or fitted to the training rows (in one
    // streaming pass when they are memory-mapped), applied to training and validation features.
    let stats = match (&init, standardize_features, &mapped) {
        (Some(c), _, _) if c.standardizer.is_some() => c.standardizer.clone(),
        (_, true, Some(source)) => Some(source.fit_standardizer()),
        (_, true, None) => Some(Standardizer::fit(&train_data.features)),
        _ => None,
    };
    if let Some(s) = &stats {
        if mapped.is_none() {
            s.apply(&mut train_data.features)?;
        }
        if let Some(v) = &mut val_data {
            s.apply(&mut v.features)?;
        }
    }
    if let Some(source) = &mut mapped {
        source.set_targets(train_data.targets.clone(), &train_data.name)?;
        source.set_standardizer(stats.clone())?;
    }

    let setup = Setup {
        model,
        loss,
        optimizer: super::optimizer_flags::optimizer(a)?,
    };
    check_host_memory(a, &setup, train_data.rows())?;
    let start = init.as_ref().map_or_else(
        || Parameters::init(&setup.model, a.seed),
        |c| c.parameters.clone(),
    );
    Ok(Prepared {
        epochs,
        resume,
        mapped,
        train_data,
        val_data,
        setup,
        start,
        stats,
    })
}

/// Refuses a model whose host-side arrays exceed the memory available, before any is allocated:
/// the starting parameters of every model the flags describe (`K` = the product of the list
/// lengths and `--restarts`), and, when the CPU engine may train them, its parameters, gradients,
/// optimizer state and a batch's activations. (The GPU engine checks the device's memory itself.)
fn check_host_memory(a: &TrainArgs, setup: &Setup, rows: usize) -> Result<()> {
    use downhill::host_memory::{activation_bytes, check, parameter_bytes};
    let models = [a.lr.len(), a.momentum.len(), a.weight_decay.len()]
        .iter()
        .map(|&n| n.max(1) as u64)
        .chain([a.restarts.max(1)])
        .product::<u64>();
    let copy = parameter_bytes(&setup.model).saturating_mul(models);
    let on_cpu = a.device.device.iter().all(|d| *d != DeviceChoice::Gpu);
    let cpu = |bytes: u64| if on_cpu { bytes } else { 0 };
    let slots = setup.optimizer.state_slots().len() as u64;
    let batch = a.batch_size.min(rows.max(1));
    check(&[
        ("starting parameters", copy),
        ("parameters", cpu(copy)),
        ("gradients", cpu(copy)),
        ("optimizer state", cpu(copy.saturating_mul(slots))),
        (
            "activations",
            cpu(activation_bytes(&setup.model, batch).saturating_mul(models)),
        ),
    ])
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

/// Checks every output path before any work (see [`downhill::fsio::check_output`]).
pub fn check_outputs(outputs: &[(&str, Option<&Path>)]) -> Result<()> {
    outputs
        .iter()
        .filter_map(|(flag, path)| path.map(|p| (flag, p)))
        .try_for_each(|(flag, path)| check_output(path, flag))
}

/// `outcome` when every output was written; else each failure printed, and an error that counts
/// them.
pub fn finish<T>(failures: Vec<Error>, outcome: T) -> Result<T> {
    match failures.len() {
        0 => Ok(outcome),
        1 => Err(failures.into_iter().next().expect("one failure")),
        n => {
            for failure in &failures {
                errln!("error: {failure}");
            }
            Err(Error::Usage(format!(
                "{n} outputs could not be written (above); the others were"
            )))
        }
    }
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

/// The run the flags describe over `epochs`: batches, order, schedule, clipping, read-backs and
/// residency (no early stopping, no training-state checkpoints).
pub fn run_config(a: &TrainArgs, epochs: u64) -> Result<TrainConfig> {
    Ok(TrainConfig {
        epochs,
        max_steps: a.max_steps,
        batch_size: a.batch_size,
        shuffle: !a.no_shuffle,
        drop_last: a.drop_last,
        seed: a.seed,
        schedule: LrSchedule {
            schedule: a.schedule.parse()?,
            warmup_steps: a.warmup,
        },
        early_stopping: None,
        clip_norm: a.clip_norm,
        log_every: a.log_every,
        residency: match a.residency {
            ResidencyChoice::Auto => Residency::Auto,
            ResidencyChoice::Resident => Residency::Resident,
            ResidencyChoice::Streamed => Residency::Streamed,
        },
        checkpoint: None,
        divergence_threshold: match a.divergence_threshold {
            t if t == 0.0 => None,
            t if t.is_finite() && t > 1.0 => Some(t),
            t => {
                return Err(Error::Usage(format!(
                    "--divergence-threshold {t} must be a number above 1 (a factor over the \
                     starting loss), or 0 to turn the check off"
                )));
            }
        },
    })
}

/// Whether --features names an `.npy` file larger than half the memory available now (Linux's
/// `MemAvailable`), in which case it is memory-mapped and streamed instead of read whole.
fn too_large_for_memory(data: &super::args::DataArgs, quiet: bool) -> bool {
    let Some(path) = &data.features else {
        return false;
    };
    let mut magic = [0u8; 6];
    let is_npy = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic == b"\x93NUMPY";
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kib| kib * 1024)
        });
    let too_large = is_npy && available.is_some_and(|a| size > a / 2);
    if too_large && !quiet {
        errln!(
            "data: {} ({} MiB) is over half the available memory; memory-mapping it and streaming batches from disk",
            path.display(),
            size >> 20
        );
    }
    too_large
}

fn widths(model: &ModelSpec) -> Vec<usize> {
    std::iter::once(model.inputs())
        .chain(model.layers().iter().map(|l| l.outputs))
        .collect()
}
