//! Results shown to people: SVG charts drawn with plotters (linear or logarithmic axes with
//! ticks where they mean something, curves told apart by colour and stroke, markers, reference
//! lines, a legend beside the data rather than over it), the charts of `train`, `sweep` and
//! `bench batch-size`, and numbers formatted to read right in tables and on axes.

mod axis;
pub mod bench;
mod draw;
pub mod number;
pub mod sweep;
pub mod training;

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::fsio;

/// How an axis maps values to positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Evenly spaced values.
    Linear,
    /// Evenly spaced decades (values at or below zero are left out).
    Log,
    /// Logarithmic when every value is positive and they span more than a factor of 20,
    /// linear otherwise.
    Auto,
}

/// Where an axis has its labelled ticks.
#[derive(Debug, Clone, PartialEq)]
pub enum Ticks {
    /// Round numbers (1, 2 or 5 times a power of ten; decades on a log axis) chosen from the
    /// range.
    Auto,
    /// Round whole numbers only, for counts such as epochs.
    Whole,
    /// Exactly these values, for measured points such as batch sizes.
    At(Vec<f64>),
}

/// One axis: its label and how it is scaled and ticked.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// The label, with units; ", log scale" is added when the axis is drawn logarithmic.
    pub label: String,
    /// Linear, logarithmic, or chosen from the data.
    pub scale: Scale,
    /// Where the labelled ticks go.
    pub ticks: Ticks,
}

impl Axis {
    /// An axis labelled `label` with automatic ticks.
    pub fn new(label: impl Into<String>, scale: Scale) -> Self {
        Self {
            label: label.into(),
            scale,
            ticks: Ticks::Auto,
        }
    }

    /// The same axis with ticks `ticks`.
    pub fn with_ticks(self, ticks: Ticks) -> Self {
        Self { ticks, ..self }
    }
}

/// A curve's colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    /// The `i`th colour of a palette of ten that stay apart on white (cycling beyond ten).
    Palette(usize),
    /// Dark grey, for legend samples of a line style alone and for reference lines.
    Neutral,
}

/// How a curve's line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stroke {
    /// Unbroken.
    Solid,
    /// Dashes.
    Dashed,
    /// Dots.
    Dotted,
    /// Long dashes.
    LongDashed,
    /// Dots set far apart.
    Sparse,
    /// No line: markers only.
    Hidden,
}

impl Stroke {
    /// The `i`th of the visible strokes (cycling): solid, dashed, dotted, long-dashed, sparse.
    pub fn nth(i: usize) -> Self {
        [
            Stroke::Solid,
            Stroke::Dashed,
            Stroke::Dotted,
            Stroke::LongDashed,
            Stroke::Sparse,
        ][i % 5]
    }
}

/// A mark drawn at a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// A filled disc.
    Dot,
    /// An ×.
    Cross,
}

/// How a curve (or its legend sample) looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Its colour.
    pub colour: Colour,
    /// Its line.
    pub stroke: Stroke,
    /// A marker at every point, if any.
    pub marker: Option<Marker>,
}

impl Style {
    /// A plain line in `colour` and `stroke`, without markers.
    pub fn line(colour: Colour, stroke: Stroke) -> Self {
        Self {
            colour,
            stroke,
            marker: None,
        }
    }
}

/// One curve of `(x, y)` points, drawn in order. Non-finite points, and points at or below
/// zero on a logarithmic axis, are left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The points.
    pub points: Vec<(f64, f64)>,
    /// How it looks.
    pub style: Style,
    /// Set for a curve that left the chart for good (a diverged model): it does not widen the y
    /// range, is drawn up to its last point inside it, and is marked with an × there; with no
    /// point inside, the × sits on the top edge at this x.
    pub escaped_at: Option<f64>,
}

/// A horizontal line across the chart at a value of y (a target), labelled at its right end.
/// The y range always includes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// Where it is drawn.
    pub y: f64,
    /// Its label.
    pub label: String,
}

/// One line of a legend, drawn beside the chart, never over its data.
#[derive(Debug, Clone, PartialEq)]
pub enum LegendEntry {
    /// A sample of a style and what it stands for.
    Item(Style, String),
    /// A sentence without a sample, in smaller grey type.
    Note(String),
}

/// One chart: a title, two axes, curves, reference lines and a legend.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Title above the chart.
    pub title: String,
    /// The horizontal axis.
    pub x: Axis,
    /// The vertical axis.
    pub y: Axis,
    /// The curves. The y range covers those that did not escape (see [`Series::escaped_at`])
    /// and the reference lines; when every curve escaped, it covers them all.
    pub series: Vec<Series>,
    /// Horizontal reference lines.
    pub references: Vec<Reference>,
    /// The legend, drawn to the right of the data; empty for none.
    pub legend: Vec<LegendEntry>,
}

/// The distinct values of `values`, in the order they first appear.
fn distinct<T: PartialEq>(values: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen
}

/// Width of the whole picture, pixels.
const WIDTH: u32 = 1000;
/// Height of one chart, pixels.
const CHART_HEIGHT: u32 = 480;

/// Draws `charts` one above the other into an SVG at `path` (written atomically).
pub fn write_svg(path: &Path, charts: &[Chart]) -> Result<()> {
    fsio::write_atomic(
        path,
        svg(charts).map_err(|e| draw_failed(path, e))?.as_bytes(),
    )
}

/// The error for a picture plotters could not draw.
fn draw_failed(path: &Path, message: String) -> Error {
    Error::Usage(format!(
        "could not draw the plot {}: {message}; the other outputs are unaffected",
        path.display()
    ))
}

/// `charts` one above the other as SVG text.
fn svg(charts: &[Chart]) -> std::result::Result<String, String> {
    let mut svg = String::new();
    {
        let height = CHART_HEIGHT * charts.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        for (area, chart) in root
            .split_evenly((charts.len().max(1), 1))
            .iter()
            .zip(charts)
        {
            draw::chart(area, chart)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}
