//! Pieces the commands share: choosing the engine and loading data from flags.

use std::path::Path;
use std::sync::OnceLock;

use downhill::data::Dataset;
use downhill::data::csv::{Column, CsvOptions};
use downhill::data::load::{DataSpec, load};
use downhill::gpu::{
    Cancel, OnProgress, Placement, Progress, Tuning, Want, choose_adapter, enumerate_adapters,
};
use downhill::{
    AdapterRequest, CpuEngine, Engine, Error, GpuContext, GpuEngine, Parameters, Result, Setup,
};

use super::args::{BackendChoice, DataArgs, DeviceArgs, DeviceChoice, GpuArgs};
use super::signals::StopSignal;
use crate::cli::output::errln;

/// The process's stop flag, once a command has installed its signal handlers: autotuning checks
/// it between timed runs.
static STOP: OnceLock<Cancel> = OnceLock::new();

/// Lets a signal that `signal` records stop autotuning within a timed run (a signal before
/// training starts ends the process anyway; this covers tuning that runs after it).
pub fn stop_tuning_on(signal: &StopSignal) {
    // Installed once per process; a second call has nothing to add.
    let _ = STOP.set(Cancel::from_flag(signal.flag()));
}

/// Prints what the slow work of building a GPU engine is doing, on stderr: compiling the
/// kernels, each product as autotuning times it, then where the choices are kept.
fn print_progress(event: &Progress) {
    match event {
        Progress::Compiling => errln!("compiling the GPU kernels ..."),
        Progress::Tuning {
            index,
            total,
            product,
        } => errln!(
            "tuning {total} matrix product{} for this adapter, once: {index}/{total} ({product}) ...",
            if *total == 1 { "" } else { "s" }
        ),
        Progress::Tuned { total, seconds } => {
            let cache = match Tuning::autotune_cached() {
                Tuning::Autotune { cache: Some(path) } => format!(", cached in {}", path.display()),
                _ => String::new(),
            };
            errln!(
                "tuned {total} matrix product{} in {seconds:.1} s{cache} (--no-autotune skips \
                 tuning)",
                if *total == 1 { "" } else { "s" }
            );
        }
        _ => {}
    }
}

/// The adapter the flags choose: `--adapter` is an index in `downhill devices`' list or a
/// piece of an adapter's name (`WGPU_ADAPTER_NAME` when it is not given); `--backend` narrows
/// it to one API; `WGPU_POWER_PREF=low` prefers an integrated GPU. Tuning progress goes to
/// stderr, and the process's stop flag cancels tuning.
pub fn adapter_request(device: &GpuArgs) -> AdapterRequest {
    let env = AdapterRequest::from_env();
    let (index, name) = match device.adapter.as_deref().map(str::parse::<usize>) {
        Some(Ok(i)) => (Some(i), None),
        Some(Err(_)) => (None, device.adapter.clone()),
        None if env.name.is_none() => (rank_gpu(device), None),
        None => (None, env.name),
    };
    AdapterRequest {
        backend: backend(device),
        name,
        index,
        limits: None,
        device_memory: device.gpu_memory.map(|mib| mib << 20),
        tuning: if device.no_autotune {
            Tuning::Fixed
        } else {
            Tuning::autotune_cached()
        },
        power_preference: env.power_preference,
        vulkan_driver_files: env.vulkan_driver_files,
        progress: Some(OnProgress::new(print_progress)),
        cancel: STOP.get().cloned(),
    }
}

/// The backend `--backend` names.
fn backend(device: &GpuArgs) -> Option<wgpu::Backend> {
    device.backend.map(|b| match b {
        BackendChoice::Vulkan => wgpu::Backend::Vulkan,
        BackendChoice::Metal => wgpu::Backend::Metal,
        BackendChoice::Dx12 => wgpu::Backend::Dx12,
        BackendChoice::Gl => wgpu::Backend::Gl,
    })
}

/// Under mpirun, on a host with several hardware GPUs: the index of the one this rank takes
/// ([`downhill::gpu::rank_adapter`]); `None` elsewhere.
fn rank_gpu(device: &GpuArgs) -> Option<usize> {
    let local_rank = super::ranks::get()?.local_rank;
    let infos: Vec<_> = enumerate_adapters().iter().map(|a| a.get_info()).collect();
    downhill::gpu::rank_adapter(&infos, backend(device), local_rank)
}

/// Builds with `gpu` on the adapter the flags ask for, or with `cpu` when they ask for the CPU
/// (or, with `auto`, when there is no hardware GPU), saying on stderr which one and why (and,
/// unless `quiet`, the progress of autotuning); `notes` are added to what it says about the CPU
/// and the GPU. An adapter or backend named by the flags that matches none is an error, whatever
/// `--device` says.
pub fn on_device<T>(
    device: &DeviceArgs,
    quiet: bool,
    (cpu_note, gpu_note): (&str, &str),
    cpu: impl FnOnce() -> Result<T>,
    gpu: impl FnOnce(&GpuContext) -> Result<T>,
) -> Result<T> {
    let say = |text: String| {
        if !quiet {
            errln!("{text}");
        }
    };
    let choice = device.device;
    let mut request = adapter_request(&device.gpu);
    if choice == DeviceChoice::Cpu {
        // An adapter named on the command line that does not exist is an error even here.
        if device.gpu.adapter.is_some() || device.gpu.backend.is_some() {
            let infos: Vec<_> = enumerate_adapters().iter().map(|a| a.get_info()).collect();
            choose_adapter(&infos, &request, Want::AnyAdapter).map_err(|e| match e {
                Error::NoAdapter {
                    filter, available, ..
                } => Error::NoAdapter {
                    filter,
                    available,
                    hint: "name one of those, or drop --adapter and --backend, which the CPU \
                           engine (--device cpu) does not use"
                        .into(),
                },
                other => other,
            })?;
        }
        let unused: Vec<&str> = [
            ("--gpu-memory", device.gpu.gpu_memory.is_some()),
            ("--no-autotune", device.gpu.no_autotune),
        ]
        .iter()
        .filter(|(_, given)| *given)
        .map(|(flag, _)| *flag)
        .collect();
        if !unused.is_empty() {
            say(format!(
                "warning: {} {} the GPU engine and {} ignored with --device cpu",
                unused.join(" and "),
                if unused.len() == 1 {
                    "applies to"
                } else {
                    "apply to"
                },
                if unused.len() == 1 { "is" } else { "are" }
            ));
        }
        say(format!(
            "device: cpu (ndarray reference engine{cpu_note}), as asked"
        ));
        return cpu();
    }
    if quiet {
        request.progress = None;
    }
    let ctx = if choice == DeviceChoice::Gpu {
        GpuContext::new(&request)?
    } else {
        match GpuContext::auto(&request)? {
            Placement::Gpu(ctx) => *ctx,
            Placement::Cpu(why) => {
                say(format!(
                    "device: cpu (ndarray reference engine{cpu_note}), because {why}"
                ));
                return cpu();
            }
        }
    };
    say(format!("device: gpu {}{gpu_note}", ctx.describe()));
    gpu(&ctx)
}

/// Builds the engine the flags ask for, saying on stderr which one and why.
pub fn engine(
    device: &DeviceArgs,
    setup: Setup,
    init: &Parameters,
    max_batch: usize,
    quiet: bool,
) -> Result<Box<dyn Engine>> {
    on_device(
        device,
        quiet,
        ("", ""),
        || Ok(Box::new(CpuEngine::new(setup.clone(), init)?) as Box<dyn Engine>),
        |ctx| Ok(Box::new(GpuEngine::new(ctx, setup.clone(), init, max_batch)?) as Box<dyn Engine>),
    )
}

/// Builds an engine for evaluation and prediction as [`engine`] does, tuning only the products
/// those run (forward, at `max_batch` rows), never the training products.
pub fn inference_engine(
    device: &DeviceArgs,
    setup: Setup,
    init: &Parameters,
    max_batch: usize,
) -> Result<Box<dyn Engine>> {
    on_device(
        device,
        false,
        ("", ""),
        || Ok(Box::new(CpuEngine::new(setup.clone(), init)?) as Box<dyn Engine>),
        |ctx| {
            let engine = GpuEngine::new(&ctx.for_inference(), setup.clone(), init, max_batch)?;
            Ok(Box::new(engine) as Box<dyn Engine>)
        },
    )
}

/// CSV options from the flags; `default_targets` applies when no --target-column is given.
pub fn csv_options(
    target_column: &[String],
    no_header: bool,
    drop_nonfinite: bool,
    default_targets: Vec<Column>,
) -> CsvOptions {
    CsvOptions {
        header: no_header.then_some(false),
        targets: if target_column.is_empty() {
            default_targets
        } else {
            target_column
                .iter()
                .map(|c| c.parse().expect("parsing a column is infallible"))
                .collect()
        },
        drop_nonfinite,
    }
}

/// The data source the flags name, or `None` when they name none.
pub fn data_spec(args: &DataArgs, seed: u64) -> Result<Option<DataSpec>> {
    let sources = [
        args.features.is_some() || args.targets.is_some(),
        args.data.is_some(),
        args.dataset.is_some(),
    ];
    if sources.iter().filter(|&&s| s).count() > 1 {
        return Err(Error::Usage(
            "name one data source: --features with --targets, --data FILE.csv, or --dataset NAME"
                .into(),
        ));
    }
    Ok(Some(
        match (&args.features, &args.targets, &args.data, &args.dataset) {
            (Some(features), Some(targets), _, _) => DataSpec::Files {
                features: features.clone(),
                targets: targets.clone(),
                drop_nonfinite: args.drop_nonfinite,
            },
            (Some(_), None, _, _) | (None, Some(_), _, _) => {
                return Err(Error::Usage(
                    "--features and --targets go together: give both".into(),
                ));
            }
            (_, _, Some(path), _) => DataSpec::Csv {
                path: path.clone(),
                options: csv_options(
                    &args.target_column,
                    args.no_header,
                    args.drop_nonfinite,
                    vec![Column::Index(-1)],
                ),
            },
            (_, _, _, Some(name)) => DataSpec::Builtin {
                name: name.clone(),
                seed,
            },
            _ => return Ok(None),
        },
    ))
}

/// The dataset the flags name, or `None` when they name none; rows skipped for NaN or infinite
/// values are said on stderr.
pub fn dataset(args: &DataArgs, seed: u64) -> Result<Option<Dataset>> {
    let Some(spec) = data_spec(args, seed)? else {
        return Ok(None);
    };
    let (data, dropped) = load(&spec)?;
    if dropped > 0 {
        say_dropped(&data.name, dropped, data.rows());
    }
    Ok(Some(data))
}

/// Says on stderr that `dropped` rows of `source` were skipped for NaN or infinite values.
pub fn say_dropped(source: &str, dropped: usize, kept: usize) {
    errln!(
        "data: {source}: dropped {dropped} row(s) with NaN or infinite values (--drop-nonfinite), kept {kept}"
    );
}

/// Where a run's training state goes: `--checkpoint`, else beside `--save` (`out.safetensors` →
/// `out.state.safetensors`) when that is a file, else `downhill.state.safetensors` (a model
/// saved into a device or FIFO has no folder of its own to share).
pub fn state_path(checkpoint: Option<&Path>, save: Option<&Path>) -> std::path::PathBuf {
    if let Some(path) = checkpoint {
        return path.to_path_buf();
    }
    match save {
        Some(save) if !downhill::fsio::is_stream(save) => {
            let stem = save
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into());
            save.with_file_name(format!("{stem}.state.safetensors"))
        }
        _ => "downhill.state.safetensors".into(),
    }
}
