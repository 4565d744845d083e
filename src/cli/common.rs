//! Pieces the commands share: choosing the engine and loading data from flags.

use std::path::Path;

use downhill::data::Dataset;
use downhill::data::csv::{Column, CsvOptions};
use downhill::data::load::{DataSpec, load, load_csv};
use downhill::{
    AdapterRequest, CpuEngine, Engine, Error, GpuContext, GpuEngine, Parameters, Result, Setup,
};

use downhill::gpu::Tuning;

use super::args::{BackendChoice, DataArgs, DeviceArgs, DeviceChoice};
use crate::cli::output::errln;

/// The adapter the flags choose: `--adapter` is an index in `downhill devices`' list or a
/// piece of an adapter's name; `--backend` narrows it to one API.
pub fn adapter_request(device: &DeviceArgs) -> AdapterRequest {
    let (index, name) = match device.adapter.as_deref().map(str::parse::<usize>) {
        Some(Ok(i)) => (Some(i), None),
        _ => (None, device.adapter.clone()),
    };
    AdapterRequest {
        backend: device.backend.map(|b| match b {
            BackendChoice::Vulkan => wgpu::Backend::Vulkan,
            BackendChoice::Metal => wgpu::Backend::Metal,
            BackendChoice::Dx12 => wgpu::Backend::Dx12,
            BackendChoice::Gl => wgpu::Backend::Gl,
        }),
        name,
        index,
        limits: None,
        device_memory: device.gpu_memory.map(|mib| mib << 20),
        tuning: if device.no_autotune {
            Tuning::Fixed
        } else {
            Tuning::autotune_cached()
        },
    }
}

/// The one device the flags name (only `bench batch-size` takes several).
pub fn single_device(device: &DeviceArgs) -> Result<DeviceChoice> {
    match device.device[..] {
        [one] => Ok(one),
        _ => Err(Error::Usage(
            "--device takes one of auto, gpu or cpu here".into(),
        )),
    }
}

/// Builds with `gpu` on the adapter the flags ask for, or with `cpu` when they ask for the CPU
/// (or, with `auto`, when no GPU can be used), saying on stderr which one and why; `notes` are
/// added to what it says about the CPU and the GPU.
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
    let choice = single_device(device)?;
    if choice == DeviceChoice::Cpu {
        say(format!(
            "device: cpu (ndarray reference engine{cpu_note}), as asked"
        ));
        return cpu();
    }
    match GpuContext::new(&adapter_request(device)) {
        Ok(ctx) => {
            say(format!("device: gpu {}{gpu_note}", ctx.describe()));
            gpu(&ctx)
        }
        Err(e) if choice == DeviceChoice::Auto => {
            say(format!(
                "device: cpu (ndarray reference engine{cpu_note}), because no GPU could be used: {e}"
            ));
            cpu()
        }
        Err(e) => Err(e),
    }
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

/// The dataset the flags name, or `None` when they name none.
pub fn dataset(args: &DataArgs, seed: u64) -> Result<Option<Dataset>> {
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
    let spec = match (&args.features, &args.targets, &args.data, &args.dataset) {
        (Some(features), Some(targets), _, _) => DataSpec::Files {
            features: features.clone(),
            targets: targets.clone(),
        },
        (Some(_), None, _, _) | (None, Some(_), _, _) => {
            return Err(Error::Usage(
                "--features and --targets go together: give both".into(),
            ));
        }
        (_, _, Some(path), _) => {
            // Read apart from `load`, to say how many rows were dropped.
            let options = csv_options(
                &args.target_column,
                args.no_header,
                args.drop_nonfinite,
                vec![Column::Index(-1)],
            );
            let (data, dropped) = load_csv(path, &options)?;
            if dropped > 0 {
                errln!(
                    "data: {}: dropped {dropped} row(s) with NaN or infinite values (--drop-nonfinite), kept {}",
                    path.display(),
                    data.rows()
                );
            }
            return Ok(Some(data));
        }
        (_, _, _, Some(name)) => DataSpec::Builtin {
            name: name.clone(),
            seed,
        },
        _ => return Ok(None),
    };
    load(&spec).map(Some)
}

/// `out.safetensors` → `out.state.safetensors`.
pub fn state_path_for(save: &Path) -> std::path::PathBuf {
    let stem = save
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    save.with_file_name(format!("{stem}.state.safetensors"))
}
