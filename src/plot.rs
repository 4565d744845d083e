//! Plots written as SVG: labelled axes, a legend, and a log scale where losses span decades.

use std::path::Path;

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

/// Draws `series` as lines into an SVG at `path` (written atomically). The y axis is
/// logarithmic when every value is positive and they span more than a factor of 20.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    let points = || {
        series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in points() {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        return Err(Error::InvalidModel(format!(
            "nothing to plot in {}: no finite points",
            path.display()
        )));
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let log = y0 > 0.0 && y1 / y0 > 20.0;
    if y1 <= y0 {
        y1 = y0 + y0.abs().max(1.0) * 0.1;
        y0 -= y0.abs().max(1.0) * 0.1;
    }
    let mut svg = String::new();
    let plot_error =
        |e: String| Error::InvalidModel(format!("could not draw {}: {e}", path.display()));
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(e.to_string()))?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72);
        let colors = [&BLUE, &RED, &GREEN, &MAGENTA, &CYAN, &BLACK];
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart.map_err(|e| plot_error(e.to_string()))?;
                chart
                    .configure_mesh()
                    .x_desc(x_label)
                    .y_desc(y_label)
                    .draw()
                    .map_err(|e| plot_error(e.to_string()))?;
                for (i, s) in series.iter().enumerate() {
                    let color = colors[i % colors.len()];
                    let finite: Vec<(f64, f64)> = s
                        .points
                        .iter()
                        .copied()
                        .filter(|(x, y)| x.is_finite() && y.is_finite() && (!log || *y > 0.0))
                        .collect();
                    chart
                        .draw_series(LineSeries::new(finite, color.stroke_width(2)))
                        .map_err(|e| plot_error(e.to_string()))?
                        .label(s.name.clone())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                        });
                }
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|e| plot_error(e.to_string()))?;
            }};
        }
        if log {
            draw!(builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale()));
        } else {
            draw!(builder.build_cartesian_2d(x0..x1, y0..y1));
        }
        root.present().map_err(|e| plot_error(e.to_string()))?;
    }
    fsio::write_atomic(path, svg.as_bytes())
}
