//! Run preparation from the flags (shared by `train`, `sweep`, `check`, `lr-find` and `bench`):
//! the flag groups mapped to a [`RunRequest`] for [`downhill::prepare::prepare`], whose notes
//! are said on stderr, and the run's configuration.

use std::path::Path;
use std::sync::Arc;

use downhill::data::Dataset;
use downhill::data::task::Task;
use downhill::optim::LrSchedule;
use downhill::prepare::{MemoryMap, ModelRequest, Note, PreparedRun, RunRequest, Validation};
use downhill::train::{Residency, TrainConfig, TrainData};
use downhill::{Error, Norm, Result};

use super::args::{
    BatchArgs, DataArgs, DeviceChoice, MmapArgs, ModelArgs, MonitorArgs, NormChoice, OptimizerArgs,
    ResidencyChoice, RunArgs, ScheduleArgs, TaskChoice, ValidationArgs,
};
use super::common::{data_spec, say_dropped};
use crate::cli::output::errln;

/// What run preparation reads from a command's flags.
pub struct RunFlags<'a> {
    /// Where the training rows come from (none named: the built-in digits, standardised, with
    /// 20% held out).
    pub data: &'a DataArgs,
    /// Whether the training features may be memory-mapped.
    pub memory_map: MemoryMap,
    /// Validation data, for the commands that validate.
    pub validation: Option<&'a ValidationArgs>,
    /// Architecture, loss, task, feature scaling.
    pub model: &'a ModelArgs,
    /// Starting parameters, for the commands that take them.
    pub init: Option<&'a Path>,
    /// The optimizer's hyperparameters.
    pub optimizer: &'a OptimizerArgs,
    /// The learning rates (empty: the optimizer's default).
    pub lr: &'a [f64],
    /// The largest batch the run takes.
    pub batch_size: usize,
    /// Seed of initialisation, the validation split and synthetic data.
    pub seed: u64,
    /// Epochs and steps asked for.
    pub epochs: Option<u64>,
    /// Stop after this many steps in all.
    pub max_steps: Option<u64>,
    /// A training state to resume from.
    pub resume: Option<&'a Path>,
    /// Initialisations of each setting (sweeps and checks).
    pub restarts: u64,
    /// Whether the CPU engine may train the models (its memory is then the host's).
    pub on_cpu: bool,
    /// Print nothing but errors.
    pub quiet: bool,
}

impl<'a> RunFlags<'a> {
    /// The flags every command that trains has (data, model, optimizer, batches), the others at
    /// their neutral values: the rows read whole, no validation, no starting parameters, the
    /// optimizer's default rate, no length asked for, no resume, one initialisation, the CPU
    /// engine possible, and not quiet.
    pub fn new(
        data: &'a DataArgs,
        model: &'a ModelArgs,
        optimizer: &'a OptimizerArgs,
        batches: &BatchArgs,
    ) -> Self {
        Self {
            data,
            memory_map: MemoryMap::Never,
            validation: None,
            model,
            init: None,
            optimizer,
            lr: &[],
            batch_size: batches.batch_size,
            seed: batches.seed,
            epochs: None,
            max_steps: None,
            resume: None,
            restarts: 1,
            on_cpu: true,
            quiet: false,
        }
    }
}

impl<'a> RunFlags<'a> {
    /// A training run's flags (`train`'s and `sweep`'s): memory-mapping, validation, starting
    /// parameters, learning rates and length as given, the CPU engine possible unless
    /// `--device gpu`.
    pub fn of_run(run: &'a RunArgs) -> Self {
        Self {
            memory_map: memory_map(&run.mmap),
            validation: Some(&run.validation),
            init: run.init.init.as_deref(),
            lr: &run.lr.lr,
            epochs: run.length.epochs,
            max_steps: run.length.max_steps,
            on_cpu: run.device.device != DeviceChoice::Gpu,
            ..Self::new(&run.data, &run.model, &run.optimizer, &run.batches)
        }
    }
}

/// The memory-mapping `--mmap` asks for: always, or when the features are too large to read.
pub fn memory_map(flags: &MmapArgs) -> MemoryMap {
    if flags.mmap {
        MemoryMap::Always
    } else {
        MemoryMap::Auto
    }
}

/// Loads and fits together what the flags name (shared by every command that trains), saying
/// what was decided on stderr.
pub fn prepare(a: &RunFlags<'_>) -> Result<PreparedRun> {
    let optimizer = super::optimizer_flags::optimizer(a.optimizer, a.lr, a.quiet)?;
    // One model per combination of the hyperparameter lists, for each initialisation.
    let models = [
        a.lr.len(),
        a.optimizer.momentum.len(),
        a.optimizer.weight_decay.len(),
    ]
    .iter()
    .map(|&n| n.max(1) as u64)
    .chain([a.restarts.max(1)])
    .product::<u64>();
    let request = RunRequest {
        data: data_spec(a.data, a.seed)?,
        validation: validation(a)?,
        memory_map: a.memory_map,
        model: ModelRequest {
            task: match a.model.task {
                TaskChoice::Auto => Task::Auto,
                TaskChoice::Classification => Task::Classification,
                TaskChoice::Regression => Task::Regression,
            },
            layers: a.model.layers.clone(),
            activation: a.model.activation.parse()?,
            norm: norm(a.model, a.quiet)?,
            dropout: a.model.dropout,
            loss: a.model.loss.as_deref().map(str::parse).transpose()?,
            init: a.init.map(Path::to_path_buf),
        },
        standardize: a.model.standardize,
        standardize_targets: a.model.standardize_targets,
        resume: a.resume.map(Path::to_path_buf),
        optimizer,
        models,
        cpu_engine: a.on_cpu,
        batch_size: a.batch_size,
        seed: a.seed,
        epochs: a.epochs,
        max_steps: a.max_steps,
    };
    downhill::prepare::prepare(&request, &mut |note| say(note, a.quiet))
}

/// The norm `--norm`, `--norm-eps` and `--norm-momentum` ask for: a flag that does not apply
/// to the norm is ignored with a warning (unless `quiet`), unchecked; ε must be a finite number
/// above 0 and the momentum within [0, 1].
fn norm(model: &ModelArgs, quiet: bool) -> Result<Norm> {
    let ignored = |flag: &str, norm: &str| {
        if !quiet {
            errln!("warning: {flag} does not apply {norm} and is ignored");
        }
    };
    let eps = || -> Result<f32> {
        let eps = model
            .norm_eps
            .unwrap_or(downhill::model::layer_norm::DEFAULT_EPS);
        if !(eps.is_finite() && eps > 0.0) {
            return Err(Error::Usage(format!(
                "--norm-eps {eps}: the norm's ε must be a finite number above 0 (PyTorch's \
                 default is 1e-5)"
            )));
        }
        Ok(eps)
    };
    Ok(match model.norm {
        NormChoice::None => {
            if model.norm_eps.is_some() {
                ignored("--norm-eps", "without --norm");
            }
            if model.norm_momentum.is_some() {
                ignored("--norm-momentum", "without --norm batch");
            }
            Norm::None
        }
        NormChoice::Layer => {
            if model.norm_momentum.is_some() {
                ignored("--norm-momentum", "to --norm layer");
            }
            Norm::Layer { eps: eps()? }
        }
        NormChoice::Batch => {
            let momentum = model
                .norm_momentum
                .unwrap_or(downhill::model::batch_norm::DEFAULT_MOMENTUM);
            if !(0.0..=1.0).contains(&momentum) {
                return Err(Error::Usage(format!(
                    "--norm-momentum {momentum}: a batch norm's momentum is within [0, 1] \
                     (PyTorch's default is 0.1)"
                )));
            }
            Norm::Batch {
                eps: eps()?,
                momentum,
            }
        }
    })
}

/// The training rows of a run prepared with [`MemoryMap::Never`], which reads them whole.
pub fn in_memory(data: TrainData) -> Arc<Dataset> {
    match data {
        TrainData::Memory(rows) => rows,
        TrainData::Mapped(_) => unreachable!("a run that never memory-maps reads its rows whole"),
    }
}

/// The validation rows the flags name: a split, files read like the training data's, or none.
fn validation(a: &RunFlags<'_>) -> Result<Validation> {
    let Some(flags) = a.validation else {
        return Ok(Validation::None);
    };
    let files = DataArgs {
        features: flags.val_features.clone(),
        targets: flags.val_targets.clone(),
        data: flags.val_data.clone(),
        target_column: a.data.target_column.clone(),
        no_header: a.data.no_header,
        drop_nonfinite: a.data.drop_nonfinite,
        ..Default::default()
    };
    match (flags.val_split, data_spec(&files, a.seed)?) {
        (Some(_), Some(_)) => Err(Error::Usage(
            "give either --val-split or validation files, not both".into(),
        )),
        (Some(fraction), None) => Ok(Validation::Split(fraction)),
        (None, Some(spec)) => Ok(Validation::Data(spec)),
        (None, None) => Ok(Validation::None),
    }
}

/// Says what preparation decided, on stderr (unless `quiet`; skipped rows always).
fn say(note: Note, quiet: bool) {
    match note {
        Note::RowsDropped {
            source,
            dropped,
            kept,
        } => say_dropped(&source, dropped, kept),
        _ if quiet => {}
        Note::DefaultRun => errln!(
            "data: built-in digits (1,797 8x8 images, 10 classes), standardised, 20% held out for validation"
        ),
        Note::MemoryMapped { path, bytes } => errln!(
            "data: {} ({} MiB) is over half the available memory; memory-mapping it and streaming batches from disk",
            path.display(),
            bytes >> 20
        ),
        Note::Classes(found) => errln!(
            "data: the targets are {} whole numbers from 0 to {}: classification into {} \
             classes with cross-entropy (--task regression treats them as values)",
            found.distinct,
            found.largest,
            found.largest + 1
        ),
    }
}

/// The run the flags describe over `epochs` (stopping after `max_steps` if given): batches,
/// order, residency, schedule, clipping, read-backs and the divergence threshold (no early
/// stopping, no training-state checkpoints).
pub fn run_config(
    batches: &BatchArgs,
    residency: ResidencyChoice,
    (epochs, max_steps): (u64, Option<u64>),
    schedule: &ScheduleArgs,
    monitor: &MonitorArgs,
) -> Result<TrainConfig> {
    Ok(TrainConfig {
        epochs,
        max_steps,
        batch_size: batches.batch_size,
        accumulate: 1,
        shuffle: !batches.no_shuffle,
        drop_last: batches.drop_last,
        seed: batches.seed,
        schedule: LrSchedule {
            schedule: schedule.schedule.parse()?,
            warmup_steps: schedule.warmup,
        },
        early_stopping: None,
        clip_norm: schedule.clip_norm,
        log_every: monitor.log_every,
        residency: self::residency(residency),
        checkpoint: None,
        // The whole of each batch, unless this is a rank of a data-parallel run.
        share: super::ranks::get().map_or(downhill::data::scheduler::Share::WHOLE, |r| {
            downhill::data::scheduler::Share {
                rank: r.rank,
                ranks: r.size,
            }
        }),
        divergence_threshold: match monitor.divergence_threshold {
            0.0 => None,
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

/// [`run_config`] for a training run's flags over `epochs`.
pub fn run_config_of(run: &RunArgs, epochs: u64) -> Result<TrainConfig> {
    Ok(TrainConfig {
        accumulate: run.accumulate,
        ..run_config(
            &run.batches,
            run.residency.residency,
            (epochs, run.length.max_steps),
            &run.schedule,
            &run.monitor,
        )?
    })
}

/// The library's residency for the flag's choice.
pub fn residency(choice: ResidencyChoice) -> Residency {
    match choice {
        ResidencyChoice::Auto => Residency::Auto,
        ResidencyChoice::Resident => Residency::Resident,
        ResidencyChoice::Streamed => Residency::Streamed,
    }
}
