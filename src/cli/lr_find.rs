//! `downhill lr-find`: the learning-rate range test on the model, data and optimizer that
//! train's flags describe; prints the suggested rate, writes the curve and plots it.

use std::path::Path;

use downhill::plot::{
    Axis, Chart, Colour, LegendEntry, Marker, Scale, Series, Stroke, Style, write_svg,
};
use downhill::prepare::PreparedRun;
use downhill::tools::{LrFindConfig, LrFindReport, LrPoint, STOP_FACTOR, lr_find};
use downhill::{Error, Loss, Result};
use serde_json::json;

use super::args::{DeviceChoice, LrFindArgs};
use super::common::engine;
use super::outputs::{check_outputs, finish};
use super::prepare::{RunFlags, memory_map, prepare, residency};
use crate::cli::output::{errln, outln};

/// What `--output` is written as, from its extension.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

fn format_of(path: &Path) -> Result<Format> {
    match path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .as_deref()
    {
        Some("json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        _ => Err(Error::Usage(format!(
            "--output {}: name a .json or a .csv file; the extension chooses the format",
            path.display()
        ))),
    }
}

/// `downhill lr-find`: the learning-rate range test; prints the suggestion, writes and plots the
/// curve.
pub fn run(args: &LrFindArgs) -> Result<()> {
    let a = args;
    let format = args.output.as_deref().map(format_of).transpose()?;
    let config = LrFindConfig {
        start_lr: args.start_lr,
        end_lr: args.end_lr,
        steps: args.steps,
        batch_size: a.batches.batch_size,
        shuffle: !a.batches.no_shuffle,
        drop_last: a.batches.drop_last,
        seed: a.batches.seed,
        clip_norm: a.clip_norm,
        residency: residency(a.residency.residency),
    };
    config.validate()?;
    check_outputs(&[
        ("--output", args.output.as_deref()),
        ("--plot", a.plot.as_deref()),
    ])?;
    super::train::one_model(&[], &a.optimizer, "lr-find")?;
    let PreparedRun {
        data, setup, start, ..
    } = prepare(&RunFlags {
        memory_map: memory_map(&a.mmap),
        init: a.init.init.as_deref(),
        on_cpu: a.device.device != DeviceChoice::Gpu,
        quiet: a.quiet,
        ..RunFlags::new(&a.data, &a.model, &a.optimizer, &a.batches)
    })?;
    let loss = setup.loss;
    let mut engine = engine(
        &a.device,
        setup,
        &start,
        a.batches.batch_size.min(data.rows().max(1)),
        a.quiet,
    )?;
    if !a.quiet {
        errln!(
            "lr-find: {} steps, the learning rate rising from {:e} to {:e}",
            args.steps,
            args.start_lr,
            args.end_lr
        );
    }
    let report = lr_find(engine.as_mut(), &data, &config)?;
    if !a.quiet {
        match (report.stopped_at, report.points.last()) {
            (Some(step), Some(last)) => errln!(
                "stopped at step {step} (lr {:.1e}): the smoothed loss {:.4} exceeded {STOP_FACTOR}× \
                 its lowest, or was not finite",
                last.lr,
                last.smoothed_loss
            ),
            _ => errln!("ran all {} steps", report.points.len()),
        }
    }
    // One output that fails never costs another.
    let mut failures = Vec::new();
    if let (Some(path), Some(format)) = (&args.output, format)
        && let Err(e) = write_curve(path, format, &report, &config, loss)
    {
        failures.push(e);
    }
    if let Some(path) = &a.plot
        && let Err(e) = plot(path, &report, loss)
    {
        failures.push(e);
    }
    match report.suggested_lr {
        Some(lr) => {
            outln!("suggested lr {lr:.1e}");
            outln!("train with --lr {lr:.1e}");
        }
        None => failures.push(Error::Usage(format!(
            "the smoothed loss never fell between lr {:e} and {:e}, so there is no rate to \
             suggest; try a larger --end-lr or more --steps",
            args.start_lr, args.end_lr
        ))),
    }
    finish(failures, ())
}

/// The curve as JSON (the suggestion and settings, then one object per step) or CSV (columns
/// step, lr, loss, smoothed_loss).
fn write_curve(
    path: &Path,
    format: Format,
    report: &LrFindReport,
    config: &LrFindConfig,
    loss: Loss,
) -> Result<()> {
    let text = match format {
        Format::Csv => {
            let mut text = String::from("step,lr,loss,smoothed_loss\n");
            for p in &report.points {
                text += &format!("{},{:e},{},{}\n", p.step, p.lr, p.loss, p.smoothed_loss);
            }
            text
        }
        Format::Json => {
            let points: Vec<_> = report
                .points
                .iter()
                .map(|p| {
                    json!({
                        "step": p.step, "lr": p.lr, "loss": p.loss,
                        "smoothed_loss": p.smoothed_loss,
                    })
                })
                .collect();
            let value = json!({
                "suggested_lr": report.suggested_lr, "start_lr": config.start_lr,
                "end_lr": config.end_lr, "steps": config.steps, "stopped_at": report.stopped_at,
                "smoothing": downhill::tools::SMOOTHING, "stop_factor": STOP_FACTOR,
                "loss": loss.name(), "points": points,
            });
            format!("{value:#}\n")
        }
    };
    downhill::fsio::write_atomic(path, text.as_bytes())
}

/// The loss and smoothed loss against the learning rate on a log axis, the suggestion marked by
/// a vertical line across the curves and a dot on the smoothed loss.
fn plot(path: &Path, report: &LrFindReport, loss: Loss) -> Result<()> {
    let styles = [
        Style::line(Colour::Palette(0), Stroke::Dotted),
        Style::line(Colour::Palette(1), Stroke::Solid),
        Style {
            colour: Colour::Palette(2),
            stroke: Stroke::Dashed,
            marker: Some(Marker::Dot),
        },
    ];
    let curve = |style: Style, y: fn(&LrPoint) -> f64| Series {
        points: report.points.iter().map(|p| (p.lr, y(p))).collect(),
        style,
        escaped_at: None,
    };
    let mut series = vec![
        curve(styles[0], |p| p.loss),
        curve(styles[1], |p| p.smoothed_loss),
    ];
    let mut legend = vec![
        LegendEntry::Item(styles[0], "loss".into()),
        LegendEntry::Item(styles[1], "smoothed loss".into()),
    ];
    let smoothed = report.points.iter().map(|p| p.smoothed_loss);
    let (low, high) = smoothed
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if let Some(lr) = report.suggested_lr
        && let Some(at) = report.points.iter().find(|p| p.lr == lr)
    {
        series.push(Series {
            points: vec![(lr, low), (lr, high)],
            style: Style::line(styles[2].colour, styles[2].stroke),
            escaped_at: None,
        });
        series.push(Series {
            points: vec![(lr, at.smoothed_loss)],
            style: Style {
                stroke: Stroke::Hidden,
                ..styles[2]
            },
            escaped_at: None,
        });
        legend.push(LegendEntry::Item(
            styles[2],
            format!("suggested lr {lr:.1e}"),
        ));
    }
    write_svg(
        path,
        &[Chart {
            title: format!("learning-rate range test, {} loss", loss.name()),
            x: Axis::new("learning rate", Scale::Log),
            y: Axis::new("loss (mean per sample)", Scale::Auto),
            series,
            references: Vec::new(),
            legend,
        }],
    )
}
