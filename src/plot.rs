//! Plots written as SVG: labelled axes, a legend, and log scales where values span decades.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::fsio;

/// One named curve of `(x, y)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// One chart: title, axis labels and curves. Each axis is logarithmic when all its values are
/// positive and span more than a factor of 20 (or when `log_x` or `log_y` forces it).
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Title above the chart.
    pub title: String,
    /// The x axis label, with units.
    pub x_label: String,
    /// The y axis label, with units.
    pub y_label: String,
    /// The curves.
    pub series: Vec<Series>,
    /// Force a logarithmic x axis.
    pub log_x: bool,
    /// Force a logarithmic y axis (when every value is positive).
    pub log_y: bool,
}

/// `(min, max, logarithmic)` of the finite values.
fn range(values: impl Iterator<Item = f64>, force_log: bool) -> Option<(f64, f64, bool)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        return None;
    }
    let log = lo > 0.0 && (force_log || hi / lo > 20.0);
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        let pad = lo.abs().max(1.0) * 0.1;
        (
            if log { lo / 2.0 } else { lo - pad },
            if log { hi * 2.0 } else { hi + pad },
        )
    };
    Some((lo, hi, log))
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// A short tick label: `1e6`, `2.5e4`, `300`, `0.05`.
fn tick(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e5 || v.abs() < 1e-3) {
        format!("{v:.1e}").replace(".0e", "e")
    } else {
        let text = format!("{v:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn draw(area: &Area<'_>, chart: &Chart) -> std::result::Result<(), String> {
    let xs = range(
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0)),
        chart.log_x,
    )
    .ok_or("no finite points")?;
    let ys = range(
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1)),
        chart.log_y,
    )
    .ok_or("no finite points")?;
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&chart.title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(72);
    let colors = [
        BLUE,
        RED,
        GREEN,
        MAGENTA,
        CYAN,
        BLACK,
        RGBColor(230, 140, 0),
        RGBColor(120, 60, 160),
    ];
    macro_rules! plot {
        ($x:expr, $y:expr) => {{
            let mut c = builder
                .build_cartesian_2d($x, $y)
                .map_err(|e| e.to_string())?;
            c.configure_mesh()
                .x_desc(&chart.x_label)
                .y_desc(&chart.y_label)
                .x_labels(8)
                .y_labels(8)
                .x_label_formatter(&|v| tick(*v))
                .y_label_formatter(&|v| tick(*v))
                .draw()
                .map_err(|e| e.to_string())?;
            for (i, s) in chart.series.iter().enumerate() {
                let color = colors[i % colors.len()];
                let usable = s.points.iter().copied().filter(|(x, y)| {
                    x.is_finite() && y.is_finite() && (!xs.2 || *x > 0.0) && (!ys.2 || *y > 0.0)
                });
                c.draw_series(LineSeries::new(
                    usable.collect::<Vec<_>>(),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            }
            c.configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }};
    }
    match (xs.2, ys.2) {
        (false, false) => plot!(xs.0..xs.1, ys.0..ys.1),
        (true, false) => plot!((xs.0..xs.1).log_scale(), ys.0..ys.1),
        (false, true) => plot!(xs.0..xs.1, (ys.0..ys.1).log_scale()),
        (true, true) => plot!((xs.0..xs.1).log_scale(), (ys.0..ys.1).log_scale()),
    }
    Ok(())
}

/// Draws `charts` one above the other into an SVG at `path` (written atomically).
pub fn write_svg(path: &Path, charts: &[Chart]) -> Result<()> {
    let fail = |e: String| Error::InvalidModel(format!("could not draw {}: {e}", path.display()));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 480 * charts.len().max(1) as u32))
            .into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        for (area, chart) in root
            .split_evenly((charts.len().max(1), 1))
            .iter()
            .zip(charts)
        {
            draw(area, chart).map_err(fail)?;
        }
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    fsio::write_atomic(path, svg.as_bytes())
}
