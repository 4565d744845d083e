//! `downhill bench gemm` and `downhill bench batch-size`.

use downhill::gpu::Placement;
use downhill::plot::bench::batch_size_charts;
use downhill::plot::number::{LOSS_PLACES, decimal};
use downhill::plot::write_svg;
use downhill::tools::{
    BatchRow, BatchSweep, BenchEngine, GemmRow, PackRow, RunInfo, bench_batch_sizes, bench_gemm,
    bench_packs,
};
use downhill::train::TrainData;
use downhill::{Error, GpuContext, Result};
use serde_json::{Value, json};

use super::args::{
    BatchSizeArgs, BenchDevices, DeviceChoice, GemmArgs, PackBenchArgs, TableFormat,
};
use super::common::adapter_request;
use super::prepare::{RunFlags, in_memory, memory_map, prepare, residency};
use crate::cli::output::{errln, outln};

fn info_json(info: &RunInfo) -> Value {
    json!({
        "adapter": info.adapter, "backend": info.backend, "driver": info.driver, "model": info.model,
        "data": info.data, "version": info.version, "date": info.date,
    })
}

fn print_info(info: &RunInfo) {
    outln!(
        "adapter: {} ({}, {})",
        info.adapter,
        info.backend,
        info.driver
    );
    outln!(
        "model:   {}\ndata:    {}\ndownhill {}, {}\n",
        info.model,
        info.data,
        info.version,
        info.date
    );
}

/// Prints `cells` under `header` as a table, JSON (`json_rows`) or CSV. An empty cell is a value
/// not measured: `-` in the table, nothing in the CSV. A table is followed by `notes`, one
/// `(column, what it holds)` per line.
pub(super) fn emit(
    format: TableFormat,
    info: &RunInfo,
    header: &[&str],
    cells: &[Vec<String>],
    json_rows: Vec<Value>,
    notes: &[(&str, String)],
) {
    match format {
        TableFormat::Json => outln!(
            "{:#}",
            json!({"run": info_json(info), "results": json_rows})
        ),
        TableFormat::Csv => {
            outln!("{}", header.join(","));
            for row in cells {
                outln!("{}", row.join(","));
            }
        }
        TableFormat::Table => {
            print_info(info);
            let cells: Vec<Vec<&str>> = cells
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|c| if c.is_empty() { "-" } else { c.as_str() })
                        .collect()
                })
                .collect();
            let widths: Vec<usize> = (0..header.len())
                .map(|c| {
                    cells
                        .iter()
                        .map(|r| r[c].len())
                        .chain([header[c].len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |row: &[&str]| {
                row.iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:>w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
            };
            outln!("{}", line(header));
            for row in &cells {
                outln!("{}", line(row));
            }
            if !notes.is_empty() {
                let width = notes.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
                outln!("\ncolumns:");
                for (column, meaning) in notes {
                    outln!("  {column:<width$}  {meaning}");
                }
            }
        }
    }
}

/// `downhill bench gemm`: the matrix product's GFLOP/s on each engine asked for.
pub fn gemm(a: &GemmArgs) -> Result<()> {
    let (engines, ctx) = bench_engines(&a.devices)?;
    // The GPU's products when a GPU engine was asked for; ndarray's and the CPU engine's always.
    let gpu = engines
        .iter()
        .any(|e| matches!(e, BenchEngine::Gpu(_)))
        .then_some(ctx.as_ref())
        .flatten();
    let info = RunInfo::new(
        gpu,
        "matmul C = A·B (f32)".into(),
        format!("square sizes {:?}", a.sizes),
    );
    let rows = bench_gemm(gpu, &a.sizes, a.seconds)?;
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let g = r.gpu.as_ref();
            vec![
                r.n.to_string(),
                or_dash(g.map(|g| g.tile.clone())),
                or_dash(g.map(|g| format!("{:.2}", g.gflops))),
                or_dash(g.map(|g| format!("{:.2}", g.fixed_gflops))),
                format!("{:.2}", r.cpu_gflops),
                format!("{:.2}", r.cpu_engine_gflops),
                or_dash(g.map(|g| format!("{:.1}", 100.0 * g.gflops / r.cpu_gflops))),
                or_dash(g.map(|g| format!("{:.3}", g.seconds * 1e3))),
                format!("{:.3}", r.cpu_seconds * 1e3),
            ]
        })
        .collect();
    let json_rows = rows
        .iter()
        .map(|r: &GemmRow| {
            let g = r.gpu.as_ref();
            json!({"n": r.n, "tile": g.map(|g| &g.tile), "gpu_gflops": g.map(|g| g.gflops),
                   "fixed_tile_gflops": g.map(|g| g.fixed_gflops), "cpu_gflops": r.cpu_gflops,
                   "cpu_engine_gflops": r.cpu_engine_gflops,
                   "gpu_seconds": g.map(|g| g.seconds), "cpu_seconds": r.cpu_seconds})
        })
        .collect();
    emit(
        a.format,
        &info,
        &[
            "n",
            "tile",
            "gpu GFLOP/s",
            "fixed tile GFLOP/s",
            "ndarray GFLOP/s",
            "cpu engine GFLOP/s",
            "gpu/ndarray %",
            "gpu ms",
            "ndarray ms",
        ],
        &cells,
        json_rows,
        &[],
    );
    Ok(())
}

/// The engines `--device gpu,cpu` names, and the GPU's context when there is one: `auto` is a
/// hardware GPU when there is one, else the CPU engine (saying why).
fn bench_engines(devices: &BenchDevices) -> Result<(Vec<BenchEngine>, Option<GpuContext>)> {
    let mut engines = Vec::new();
    let mut ctx = None;
    let request = adapter_request(&devices.gpu);
    for choice in &devices.devices {
        let gpu = match choice {
            DeviceChoice::Cpu => None,
            DeviceChoice::Gpu => Some(GpuContext::new(&request)?),
            DeviceChoice::Auto => match GpuContext::auto(&request)? {
                Placement::Gpu(c) => Some(*c),
                Placement::Cpu(why) => {
                    errln!("device: cpu (ndarray reference engine), because {why}");
                    None
                }
            },
        };
        match gpu {
            Some(c) => {
                ctx = Some(c.clone());
                engines.push(BenchEngine::Gpu(Box::new(c)));
            }
            None => engines.push(BenchEngine::Cpu),
        }
    }
    Ok((engines, ctx))
}

fn data_description(data: &downhill::data::Dataset) -> String {
    format!("{} [{}, {}]", data.name, data.rows(), data.features.ncols())
}

fn describe(setup: &downhill::Setup) -> String {
    let model = &setup.model;
    let widths: Vec<String> = model.widths().iter().map(|w| w.to_string()).collect();
    format!(
        "{} {}, {}, {} lr {}",
        widths.join("-"),
        model.hidden_activation().name(),
        setup.loss.name(),
        setup.optimizer.name(),
        setup.optimizer.lr()
    )
}

/// Milliseconds per step of the back-to-back run that `samples/s` measures.
fn back_to_back_ms(r: &BatchRow) -> f64 {
    1e3 * r.batch_size as f64 / r.samples_per_second
}

/// What each column of the `bench batch-size` table holds.
fn batch_size_notes(a: &BatchSizeArgs, epochs: u64) -> Vec<(&'static str, String)> {
    let steps = a.steps;
    vec![
        (
            "samples/s",
            format!("rows trained per second over {steps} steps run back to back, none waited on"),
        ),
        (
            "step ms",
            "milliseconds per step in that same run: batch / step ms = samples/s".into(),
        ),
        (
            "latency ms",
            format!(
                "wall time of one step run alone and waited on, median of {steps} (longer than \
                 step ms where the engine overlaps a step with the next)"
            ),
        ),
        (
            "p10 ms, p90 ms",
            "10th and 90th percentile of the latency".into(),
        ),
        (
            "gpu ms",
            "median time of the same steps on the device, from timestamp queries".into(),
        ),
        ("timing", "which clock gpu ms comes from".into()),
        (
            "device MiB",
            "device memory the GPU engine allocated (parameters, state, activations, data)".into(),
        ),
        (
            "dispatches",
            "kernel launches per step, all in one submit".into(),
        ),
        (
            "matmul %",
            "the matrix products' share of a step's GPU time, every launch timed alone".into(),
        ),
        (
            "norm+dropout %",
            "the norms' and dropout's kernels' share of a step's GPU time (--norm, --dropout)"
                .into(),
        ),
        (
            "streamed/resident",
            "the training loop's samples/s with batches streamed from the host, over that with \
             the data resident on the device (- where the data streamed throughout: see the \
             data: line above)"
                .into(),
        ),
        (
            "loss@Nep",
            format!("mean training loss of the last of {epochs} epochs from the same start"),
        ),
        ("train s", format!("wall seconds of those {epochs} epochs")),
        (
            "s to target",
            match a.target_loss {
                Some(t) => format!("wall seconds until the training loss first reached {t}"),
                None => "wall seconds to --target-loss (none given)".into(),
            },
        ),
        ("-", "not measured on this engine or adapter".into()),
    ]
}

/// Says on standard error which engines streamed their batches from the host instead of
/// gathering them from data resident on the device, and why: one line per engine and reason,
/// with the batch sizes it held for.
fn say_where_batches_came_from(rows: &[BatchRow]) {
    let mut said: Vec<(&str, &str, Vec<String>)> = Vec::new();
    for r in rows {
        let Some(why) = r.streamed_because.as_deref() else {
            continue;
        };
        let size = r.batch_size.to_string();
        match said
            .iter_mut()
            .find(|(e, w, _)| *e == r.engine && *w == why)
        {
            Some((_, _, sizes)) => sizes.push(size),
            None => said.push((&r.engine, why, vec![size])),
        }
    }
    for (engine, why, sizes) in said {
        errln!(
            "data: {engine} batches of {} streamed from the host, not resident because {why}",
            sizes.join(", ")
        );
    }
}

/// `downhill bench batch-size`: throughput, step times and convergence at each batch size.
pub fn batch_size(a: &BatchSizeArgs) -> Result<()> {
    if a.batch_sizes.is_empty() || a.batch_sizes.contains(&0) || a.steps == 0 {
        return Err(Error::Usage(
            "--batch-sizes must be positive and --steps at least 1".into(),
        ));
    }
    super::train::one_model(&a.lr.lr, &a.optimizer, "bench batch-size")?;
    super::outputs::check_outputs(&[("--plot", a.plot.as_deref())])?;
    let p = prepare(&RunFlags {
        data: &a.data,
        memory_map: memory_map(&a.mmap),
        validation: None,
        model: &a.model,
        init: a.init.init.as_deref(),
        optimizer: &a.optimizer,
        lr: &a.lr.lr,
        batch_size: a.batch_sizes.iter().copied().max().unwrap_or(1),
        seed: a.seed,
        epochs: Some(a.epochs),
        max_steps: None,
        resume: None,
        restarts: 1,
        on_cpu: a.devices.devices.iter().any(|d| *d != DeviceChoice::Gpu),
        quiet: true,
    })?;
    let (engines, ctx) = bench_engines(&a.devices)?;
    // Memory-mapped features stream from disk, as `train` streams them.
    let data_desc = match &p.data {
        TrainData::Mapped(source) => format!(
            "{} [{}, {}], memory-mapped",
            p.name,
            p.data.rows(),
            source.cols()
        ),
        TrainData::Memory(rows) => data_description(rows),
    };
    let info = RunInfo::new(ctx.as_ref(), describe(&p.setup), data_desc);
    let sweep = BatchSweep {
        batch_sizes: a.batch_sizes.clone(),
        warmup_steps: a.warmup_steps,
        timed_steps: a.steps,
        epochs: p.epochs,
        target_loss: a.target_loss,
        seed: a.seed,
        residency: residency(a.residency.residency),
    };
    let rows = bench_batch_sizes(&engines, &p.setup, &p.start, &p.data, &sweep)?;
    say_where_batches_came_from(&rows);
    let opt = |v: Option<f64>, digits: usize| v.map_or(String::new(), |x| format!("{x:.digits$}"));
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.engine.clone(),
                r.batch_size.to_string(),
                format!("{:.0}", r.samples_per_second),
                format!("{:.3}", back_to_back_ms(r)),
                format!("{:.3}", r.step_ms_median),
                format!("{:.3}", r.step_ms_p10),
                format!("{:.3}", r.step_ms_p90),
                opt(r.gpu_ms_median, 3),
                r.timing.clone(),
                opt(r.device_bytes.map(|b| b as f64 / (1 << 20) as f64), 2),
                r.dispatches.map_or(String::new(), |d| d.to_string()),
                opt(r.matmul_share().map(|s| 100.0 * s), 1),
                opt(r.norm_dropout_share().map(|s| 100.0 * s), 1),
                opt(
                    r.residency
                        .and_then(|t| t.resident.map(|resident| t.streamed / resident)),
                    2,
                ),
                decimal(r.final_loss, LOSS_PLACES),
                format!("{:.2}", r.train_seconds),
                opt(r.seconds_to_target, 2),
            ]
        })
        .collect();
    let header = [
        "engine",
        "batch",
        "samples/s",
        "step ms",
        "latency ms",
        "p10 ms",
        "p90 ms",
        "gpu ms",
        "timing",
        "device MiB",
        "dispatches",
        "matmul %",
        "norm+dropout %",
        "streamed/resident",
        &format!("loss@{}ep", p.epochs),
        "train s",
        "s to target",
    ];
    let json_rows = rows
        .iter()
        .map(|r: &BatchRow| {
            json!({
                "engine": r.engine, "batch_size": r.batch_size, "samples_per_second": r.samples_per_second,
                "step_ms": back_to_back_ms(r),
                "step_ms_median": r.step_ms_median, "step_ms_p10": r.step_ms_p10, "step_ms_p90": r.step_ms_p90,
                "gpu_ms_median": r.gpu_ms_median, "timing": r.timing, "device_bytes": r.device_bytes, "dispatches": r.dispatches,
                "gpu_profile_ms": r.gpu_profile_ms.as_ref().map(|kinds| kinds.iter().map(|(k, ms)| (k.clone(), json!(ms))).collect::<serde_json::Map<_, _>>()),
                "matmul_share": r.matmul_share(),
                "norm_dropout_share": r.norm_dropout_share(),
                "data": if r.streamed_because.is_some() { "streamed" } else { "resident" },
                "streamed_because": r.streamed_because,
                "resident_samples_per_second": r.residency.and_then(|t| t.resident),
                "streamed_samples_per_second": r.residency.map(|t| t.streamed),
                "epochs": p.epochs, "final_loss": r.final_loss, "train_seconds": r.train_seconds,
                "target_loss": a.target_loss, "seconds_to_target": r.seconds_to_target,
                "loss_curve": r.curve.iter().map(|(t, l)| json!([t, l])).collect::<Vec<_>>(),
            })
        })
        .collect();
    emit(
        a.format,
        &info,
        &header,
        &cells,
        json_rows,
        &batch_size_notes(a, p.epochs),
    );
    if let Some(path) = &a.plot {
        write_svg(
            path,
            &batch_size_charts(&rows, &info.adapter, a.target_loss),
        )?;
    }
    Ok(())
}

/// `downhill bench sweep`: a sweep of K models side by side against one model alone.
pub fn packs(a: &PackBenchArgs) -> Result<()> {
    super::train::one_model(&a.lr.lr, &a.optimizer, "bench sweep")?;
    let p = prepare(&RunFlags {
        lr: &a.lr.lr,
        epochs: a.length.epochs,
        max_steps: a.length.max_steps,
        restarts: a.models.iter().copied().max().unwrap_or(1) as u64,
        on_cpu: a.device.device != DeviceChoice::Gpu,
        quiet: true,
        ..RunFlags::new(&a.data, &a.model, &a.optimizer, &a.batches)
    })?;
    let rows = in_memory(p.data);
    let (engines, ctx) = bench_engines(&BenchDevices {
        devices: vec![a.device.device],
        gpu: a.device.gpu.clone(),
    })?;
    let info = RunInfo::new(
        ctx.as_ref(),
        describe(&p.setup),
        format!(
            "{}, batch {}, {} epochs",
            data_description(&rows),
            a.batches.batch_size,
            p.epochs
        ),
    );
    let config = super::prepare::run_config(
        &a.batches,
        a.residency.residency,
        (p.epochs, a.length.max_steps),
        &a.schedule,
        &a.monitor,
    )?;
    let rows = bench_packs(&engines, &p.setup, rows, &a.models, &config, a.repeats)?;
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.engine.clone(),
                r.models.to_string(),
                r.steps.to_string(),
                format!("{:.3}", r.seconds),
                format!("{:.0}", r.model_steps_per_second),
                format!("{:.2}", r.ratio_to_one),
            ]
        })
        .collect();
    let json_rows = rows
        .iter()
        .map(|r: &PackRow| {
            json!({"engine": r.engine, "models": r.models, "steps": r.steps, "seconds": r.seconds,
                   "model_steps_per_second": r.model_steps_per_second, "ratio_to_one": r.ratio_to_one})
        })
        .collect();
    emit(
        a.format,
        &info,
        &[
            "engine",
            "models",
            "steps",
            "seconds",
            "model-steps/s",
            "time / one model",
        ],
        &cells,
        json_rows,
        &[],
    );
    Ok(())
}
