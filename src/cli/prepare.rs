//! Run preparation from train's flags (shared by `train`, `sweep`, `check` and `bench`): the
//! data, validation rows, model, loss, optimizer, starting parameters, feature statistics and
//! the run's configuration, each checked before any engine exists.

use downhill::checkpoint::{load_init, load_state};
use downhill::data::load::{adapt_targets, outputs_for};
use downhill::data::mapped::MappedNpy;
use downhill::data::{Dataset, Standardizer};
use downhill::optim::LrSchedule;
use downhill::train::{Residency, TrainConfig};
use downhill::{Activation, Error, Loss, ModelSpec, Parameters, Result, Setup, Targets};

use std::path::Path;

use downhill::data::task::{self, Task};

use super::args::{
    BatchArgs, DataArgs, DeviceChoice, ModelArgs, MonitorArgs, OptimizerArgs, ResidencyChoice,
    RunArgs, ScheduleArgs, TaskChoice, ValidationArgs,
};
use super::common::dataset;
use crate::cli::output::errln;

/// Everything a run needs before an engine exists: data, validation, model, loss, optimizer,
/// starting parameters and feature statistics, as the flags describe them.
pub struct Prepared {
    /// Epochs to train (`--epochs`, else 10, or 30 for the built-in default run).
    pub epochs: u64,
    /// The training state resumed from.
    pub resume: Option<downhill::checkpoint::TrainingState>,
    /// The training features, memory-mapped, when they stream from disk (then `train_data`
    /// holds only the targets).
    pub mapped: Option<MappedNpy>,
    /// The training rows, standardised when asked.
    pub train_data: Dataset,
    /// The validation rows, if any.
    pub val_data: Option<Dataset>,
    /// Model, loss and optimizer.
    pub setup: Setup,
    /// The starting parameters: a checkpoint's, or PyTorch's initialisation from the seed.
    pub start: Parameters,
    /// The feature statistics applied, if any.
    pub stats: Option<Standardizer>,
    /// The regression targets' statistics, when they are standardised (`--standardize-targets`,
    /// or a starting checkpoint's).
    pub target_stats: Option<Standardizer>,
}

/// What run preparation reads from a command's flags.
pub struct RunFlags<'a> {
    /// Where the training rows come from (none named: the built-in digits, standardised, with
    /// 20% held out).
    pub data: &'a DataArgs,
    /// Validation data, for the commands that validate.
    pub validation: Option<&'a ValidationArgs>,
    /// Architecture, loss, starting parameters, feature scaling.
    pub model: &'a ModelArgs,
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
    /// their neutral values: no validation, the optimizer's default rate, no length asked for, no
    /// resume, one initialisation, the CPU engine possible, and not quiet.
    pub fn new(
        data: &'a DataArgs,
        model: &'a ModelArgs,
        optimizer: &'a OptimizerArgs,
        batches: &BatchArgs,
    ) -> Self {
        Self {
            data,
            validation: None,
            model,
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
    /// A training run's flags (`train`'s and `sweep`'s): validation, learning rates and length as
    /// given, the CPU engine possible unless `--device gpu`.
    pub fn of_run(run: &'a RunArgs) -> Self {
        Self {
            validation: Some(&run.validation),
            lr: &run.lr.lr,
            epochs: run.length.epochs,
            max_steps: run.length.max_steps,
            on_cpu: run.device.device != DeviceChoice::Gpu,
            ..Self::new(&run.data, &run.model, &run.optimizer, &run.batches)
        }
    }
}

/// Loads and fits together what the flags name (shared by every command that trains).
pub fn prepare(a: &RunFlags<'_>) -> Result<Prepared> {
    if a.batch_size == 0 {
        return Err(Error::Usage("--batch-size must be at least 1".into()));
    }
    // Before any data is loaded.
    downhill::train::check_length(a.epochs, a.max_steps)?;
    let default_run = !a.data.given();
    let standardize_features = a.model.standardize || default_run;
    let epochs = a.epochs.unwrap_or(if default_run { 30 } else { 10 });
    let data_args = if default_run {
        DataArgs {
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
    let resume = a.resume.map(load_state).transpose()?;
    let mut init = resume.as_ref().map(|state| state.checkpoint.clone());

    // Data: the training rows, then validation (a file, or a seeded split).
    let mut mapped = None;
    let (mut train_data, feature_cols) = if a.data.mmap || too_large_for_memory(a.data, a.quiet) {
        if a.data.drop_nonfinite {
            return Err(Error::Usage(
                "--drop-nonfinite needs the features in memory, and memory-mapped rows cannot be \
                 skipped: drop --mmap (or clean the file)"
                    .into(),
            ));
        }
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
    if train_data.rows() == 0 {
        return Err(Error::Data {
            source_name: train_data.name.clone(),
            message: "has no rows: there is nothing to train on".into(),
        });
    }
    let no_validation = ValidationArgs::default();
    let validation = a.validation.unwrap_or(&no_validation);
    let val_files = DataArgs {
        features: validation.val_features.clone(),
        targets: validation.val_targets.clone(),
        data: validation.val_data.clone(),
        target_column: a.data.target_column.clone(),
        no_header: a.data.no_header,
        drop_nonfinite: a.data.drop_nonfinite,
        ..Default::default()
    };
    let mut val_data = dataset(&val_files, a.seed)?;
    let split = validation
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
    let hidden: Activation = a.model.activation.parse()?;
    let requested: Option<Loss> = a.model.loss.as_deref().map(str::parse).transpose()?;
    // Classes or values: inferred from the targets, unless a loss, a starting model or --task
    // says.
    // (A loss other than cross-entropy takes the targets as they come: class labels then become
    // one-hot rows or a 0/1 column, values stay values.)
    let task = match (a.model.task, requested) {
        (TaskChoice::Regression, _) => Some(Task::Regression),
        (TaskChoice::Classification, _) => Some(Task::Classification),
        (TaskChoice::Auto, Some(Loss::Mse | Loss::BceWithLogits)) => None,
        (TaskChoice::Auto, _) => Some(Task::Auto),
    };
    if let Some(task) = task
        && init.is_none()
        && a.model.init.is_none()
    {
        let given = std::mem::replace(&mut train_data.targets, Targets::Classes(vec![]));
        let (targets, inferred) = task::apply(given, task, &train_data.name)?;
        train_data.targets = targets;
        if let Some(found) = inferred {
            if let Some(v) = &mut val_data {
                let given = std::mem::replace(&mut v.targets, Targets::Classes(vec![]));
                v.targets = task::apply(given, Task::Classification, &v.name)?.0;
            }
            if !a.quiet {
                errln!(
                    "data: the targets are {} whole numbers from 0 to {}: classification into {} \
                     classes with cross-entropy (--task regression treats them as values)",
                    found.distinct,
                    found.largest,
                    found.largest + 1
                );
            }
        }
    }
    let by_targets = if matches!(train_data.targets, Targets::Classes(_)) {
        Loss::CrossEntropy
    } else {
        Loss::Mse
    };
    if init.is_none()
        && let Some(path) = &a.model.init
    {
        init = Some(load_init(path, hidden, requested.unwrap_or(by_targets))?.0);
    }
    let loss = requested
        .or(init.as_ref().map(|c| c.loss))
        .unwrap_or(by_targets);
    let model = match &init {
        Some(c) => {
            if !a.model.layers.is_empty() && a.model.layers != widths(&c.model) {
                let source = match (&a.resume, &a.model.init) {
                    (Some(p), _) => format!("--resume checkpoint {}", p.display()),
                    (None, Some(p)) => format!("--init checkpoint {}", p.display()),
                    (None, None) => "starting checkpoint".into(),
                };
                return Err(Error::InvalidModel(format!(
                    "--layers {:?} differs from the architecture of the {source}, {:?}; drop \
                     --layers or give the layers it was trained with",
                    a.model.layers,
                    widths(&c.model)
                )));
            }
            c.model.clone()
        }
        None if a.model.layers.is_empty() => ModelSpec::from_widths(
            &[feature_cols, 64, outputs_for(&train_data.targets, loss)],
            hidden,
            Activation::Identity,
        )?,
        None => ModelSpec::from_widths(&a.model.layers, hidden, Activation::Identity)?,
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

    // Regression targets' statistics: the starting checkpoint's, or fitted to the training rows
    // when asked for; applied to training and validation targets alike.
    let target_stats = match &init {
        Some(c) if a.model.standardize_targets && c.target_standardizer.is_none() => {
            return Err(Error::Usage(
                "--standardize-targets cannot apply to a model that starts from a checkpoint \
                 trained on the targets as they are (--init or --resume): drop it"
                    .into(),
            ));
        }
        Some(c) => c.target_standardizer.clone(),
        None if a.model.standardize_targets => {
            let Targets::Dense(values) = &train_data.targets else {
                return Err(Error::Usage(
                    "--standardize-targets is for regression targets (values), and these are \
                     class labels: drop it, or give --task regression"
                        .into(),
                ));
            };
            if loss != Loss::Mse {
                return Err(Error::Usage(format!(
                    "--standardize-targets is for mse regression, and the loss is {}",
                    loss.name()
                )));
            }
            Some(Standardizer::fit(values))
        }
        None => None,
    };
    if let Some(s) = &target_stats {
        for targets in std::iter::once(&mut train_data.targets)
            .chain(val_data.as_mut().map(|v| &mut v.targets))
        {
            if let Targets::Dense(values) = targets {
                s.apply(values)?;
            }
        }
    }

    let setup = Setup {
        model,
        loss,
        optimizer: super::optimizer_flags::optimizer(a.optimizer, a.lr, a.quiet)?,
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
        target_stats,
    })
}

/// Refuses a model whose host-side arrays exceed the memory available, before any is allocated:
/// the starting parameters of every model the flags describe (`K` = the product of the list
/// lengths and `--restarts`), and, when the CPU engine may train them, its parameters, gradients,
/// optimizer state and a batch's activations. (The GPU engine checks the device's memory itself.)
fn check_host_memory(a: &RunFlags<'_>, setup: &Setup, rows: usize) -> Result<()> {
    use downhill::host_memory::{activation_bytes, check, parameter_bytes};
    let models = [
        a.lr.len(),
        a.optimizer.momentum.len(),
        a.optimizer.weight_decay.len(),
    ]
    .iter()
    .map(|&n| n.max(1) as u64)
    .chain([a.restarts.max(1)])
    .product::<u64>();
    let copy = parameter_bytes(&setup.model).saturating_mul(models);
    let cpu = |bytes: u64| if a.on_cpu { bytes } else { 0 };
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

/// Whether --features names an `.npy` file larger than half the memory available now (Linux's
/// `MemAvailable`), in which case it is memory-mapped and streamed instead of read whole. Only a
/// regular file can be mapped: anything else (a pipe, a FIFO, a device) is not even opened here,
/// so that looking never waits on it, consumes it or disturbs its writer.
fn too_large_for_memory(data: &DataArgs, quiet: bool) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let Some(path) = &data.features else {
        return false;
    };
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    // Without blocking, in case the path became something else since.
    let Ok(mut file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    else {
        return false;
    };
    let size = match file.metadata() {
        Ok(m) if m.is_file() => m.len(),
        _ => return false,
    };
    let mut magic = [0u8; 6];
    let is_npy = std::io::Read::read_exact(&mut file, &mut magic).is_ok() && &magic == b"\x93NUMPY";
    let too_large = is_npy && downhill::host_memory::available().is_some_and(|a| size > a / 2);
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
