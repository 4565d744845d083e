//! `downhill bench gemm` and `downhill bench batch-size`.

use std::sync::Arc;

use downhill::plot::{Chart, Series, write_svg};
use downhill::tools::{
    BatchRow, BatchSweep, BenchEngine, GemmRow, PackRow, RunInfo, bench_batch_sizes, bench_gemm,
    bench_packs,
};
use downhill::{Error, GpuContext, Result};
use serde_json::{Value, json};

use super::args::{BatchSizeArgs, DeviceArgs, DeviceChoice, GemmArgs, PackBenchArgs, TableFormat};
use super::common::adapter_request;
use super::prepare::prepare;
use crate::cli::output::outln;

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

/// Prints `rows` (each a list of cells, the first being the header) as a table, JSON or CSV.
fn emit(
    format: TableFormat,
    info: &RunInfo,
    header: &[&str],
    cells: &[Vec<String>],
    json_rows: Vec<Value>,
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
            let line = |row: Vec<&str>| {
                row.iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:>w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
            };
            outln!("{}", line(header.to_vec()));
            for row in cells {
                outln!("{}", line(row.iter().map(String::as_str).collect()));
            }
        }
    }
}

pub fn gemm(a: &GemmArgs) -> Result<()> {
    let ctx = GpuContext::new(&adapter_request(&a.device))?;
    let info = RunInfo::new(
        Some(&ctx),
        "matmul C = A·B (f32)".into(),
        format!("square sizes {:?}", a.sizes),
    );
    let rows = bench_gemm(&ctx, &a.sizes, a.seconds)?;
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.n.to_string(),
                r.tile.clone(),
                format!("{:.2}", r.gpu_gflops),
                format!("{:.2}", r.fixed_gflops),
                format!("{:.2}", r.cpu_gflops),
                format!("{:.2}", r.cpu_engine_gflops),
                format!("{:.1}%", 100.0 * r.gpu_gflops / r.cpu_gflops),
                format!("{:.3}", r.gpu_seconds * 1e3),
                format!("{:.3}", r.cpu_seconds * 1e3),
            ]
        })
        .collect();
    let json_rows = rows
        .iter()
        .map(|r: &GemmRow| {
            json!({"n": r.n, "tile": r.tile, "gpu_gflops": r.gpu_gflops,
                   "fixed_tile_gflops": r.fixed_gflops, "cpu_gflops": r.cpu_gflops,
                   "cpu_engine_gflops": r.cpu_engine_gflops,
                   "gpu_seconds": r.gpu_seconds, "cpu_seconds": r.cpu_seconds})
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
            "gpu/ndarray",
            "gpu ms",
            "ndarray ms",
        ],
        &cells,
        json_rows,
    );
    Ok(())
}

/// The engines `--device gpu,cpu` names, and the GPU's context when there is one.
fn bench_engines(device: &DeviceArgs) -> Result<(Vec<BenchEngine>, Option<GpuContext>)> {
    let mut engines = Vec::new();
    let mut ctx = None;
    for choice in &device.device {
        match choice {
            DeviceChoice::Cpu => engines.push(BenchEngine::Cpu),
            DeviceChoice::Gpu | DeviceChoice::Auto => {
                let c = GpuContext::new(&adapter_request(device))?;
                ctx = Some(c.clone());
                engines.push(BenchEngine::Gpu(Box::new(c)));
            }
        }
    }
    Ok((engines, ctx))
}

fn data_description(data: &downhill::data::Dataset) -> String {
    format!("{} [{}, {}]", data.name, data.rows(), data.features.ncols())
}

fn describe(setup: &downhill::Setup) -> String {
    let model = &setup.model;
    let widths: Vec<String> = std::iter::once(model.inputs())
        .chain(model.layers().iter().map(|l| l.outputs))
        .map(|w| w.to_string())
        .collect();
    format!(
        "{} {}, {}, {} lr {}",
        widths.join("-"),
        model.layers()[0].activation.name(),
        setup.loss.name(),
        setup.optimizer.name(),
        setup.optimizer.lr()
    )
}

pub fn batch_size(a: &BatchSizeArgs) -> Result<()> {
    if a.batch_sizes.is_empty() || a.batch_sizes.contains(&0) || a.steps == 0 {
        return Err(Error::Usage(
            "--batch-sizes must be positive and --steps at least 1".into(),
        ));
    }
    super::train::one_model(&a.run, "bench batch-size")?;
    super::outputs::check_outputs(&[("--plot", a.run.plot.as_deref())])?;
    let p = prepare(&a.run)?;
    if p.mapped.is_some() {
        return Err(Error::Usage(
            "bench batch-size keeps its data in memory; drop --mmap".into(),
        ));
    }
    let (engines, ctx) = bench_engines(&a.run.device)?;
    let data_desc = data_description(&p.train_data);
    let info = RunInfo::new(ctx.as_ref(), describe(&p.setup), data_desc);
    let sweep = BatchSweep {
        batch_sizes: a.batch_sizes.clone(),
        warmup_steps: a.warmup_steps,
        timed_steps: a.steps,
        epochs: p.epochs,
        target_loss: a.target_loss,
        seed: a.run.seed,
    };
    let rows = bench_batch_sizes(&engines, &p.setup, &p.start, Arc::new(p.train_data), &sweep)?;
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |x| format!("{x:.digits$}"));
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.engine.clone(),
                r.batch_size.to_string(),
                format!("{:.0}", r.samples_per_second),
                format!("{:.3}", r.step_ms_median),
                format!("{:.3}", r.step_ms_p10),
                format!("{:.3}", r.step_ms_p90),
                opt(r.gpu_ms_median, 3),
                r.timing.clone(),
                r.device_bytes.map_or("-".into(), |b| {
                    format!("{:.2}", b as f64 / (1 << 20) as f64)
                }),
                r.dispatches.map_or("-".into(), |d| d.to_string()),
                opt(r.matmul_share().map(|s| 100.0 * s), 1),
                opt(r.residency.map(|t| t.streamed / t.resident), 2),
                format!("{:.5}", r.final_loss),
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
        "p10 ms",
        "p90 ms",
        "gpu ms",
        "timing",
        "device MiB",
        "dispatches",
        "matmul %",
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
                "step_ms_median": r.step_ms_median, "step_ms_p10": r.step_ms_p10, "step_ms_p90": r.step_ms_p90,
                "gpu_ms_median": r.gpu_ms_median, "timing": r.timing, "device_bytes": r.device_bytes, "dispatches": r.dispatches,
                "gpu_profile_ms": r.gpu_profile_ms.as_ref().map(|kinds| kinds.iter().map(|(k, ms)| (k.clone(), json!(ms))).collect::<serde_json::Map<_, _>>()),
                "matmul_share": r.matmul_share(),
                "resident_samples_per_second": r.residency.map(|t| t.resident),
                "streamed_samples_per_second": r.residency.map(|t| t.streamed),
                "epochs": p.epochs, "final_loss": r.final_loss, "train_seconds": r.train_seconds,
                "target_loss": a.target_loss, "seconds_to_target": r.seconds_to_target,
                "loss_curve": r.curve.iter().map(|(t, l)| json!([t, l])).collect::<Vec<_>>(),
            })
        })
        .collect();
    emit(a.format, &info, &header, &cells, json_rows);
    if let Some(path) = &a.run.plot {
        let engines: Vec<&str> = {
            let mut e: Vec<&str> = rows.iter().map(|r| r.engine.as_str()).collect();
            e.dedup();
            e
        };
        let throughput = engines
            .iter()
            .map(|e| Series {
                name: e.to_string(),
                points: rows
                    .iter()
                    .filter(|r| r.engine == *e)
                    .map(|r| (r.batch_size as f64, r.samples_per_second))
                    .collect(),
            })
            .collect();
        let curves = rows
            .iter()
            .map(|r| Series {
                name: format!("{} batch {}", r.engine, r.batch_size),
                points: r.curve.clone(),
            })
            .collect();
        write_svg(
            path,
            &[
                Chart {
                    title: format!("throughput on {}", info.adapter),
                    x_label: "batch size (rows)".into(),
                    y_label: "samples per second".into(),
                    series: throughput,
                    log_x: true,
                    log_y: false,
                },
                Chart {
                    title: "training loss against wall time".into(),
                    x_label: "wall time (s)".into(),
                    y_label: "training loss".into(),
                    series: curves,
                    log_x: false,
                    log_y: false,
                },
            ],
        )?;
    }
    Ok(())
}

pub fn packs(a: &PackBenchArgs) -> Result<()> {
    super::train::one_model(&a.run, "bench sweep")?;
    let p = prepare(&a.run)?;
    if p.mapped.is_some() {
        return Err(Error::Usage(
            "bench sweep keeps its data in memory; drop --mmap".into(),
        ));
    }
    let (engines, ctx) = bench_engines(&a.run.device)?;
    let info = RunInfo::new(
        ctx.as_ref(),
        describe(&p.setup),
        format!(
            "{}, batch {}, {} epochs",
            data_description(&p.train_data),
            a.run.batch_size,
            p.epochs
        ),
    );
    let config = super::prepare::run_config(&a.run, p.epochs)?;
    let rows = bench_packs(
        &engines,
        &p.setup,
        Arc::new(p.train_data),
        &a.models,
        &config,
        a.repeats,
    )?;
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
    );
    Ok(())
}
