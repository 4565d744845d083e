//! One [`Chart`] drawn with plotters: the data on the left, the legend in a column of its own on
//! the right.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{Resolved, Ticked};
use super::{Chart, Colour, LegendEntry, Marker, Series, Stroke, Style};

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Plot<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Ticked, Ticked>>;
type Drawn = std::result::Result<(), String>;

/// Width of the legend column, pixels.
const LEGEND_WIDTH: u32 = 250;
/// Where the legend's first line starts, pixels below the chart's top (under the title).
const LEGEND_TOP: i32 = 52;
/// Height of one line of legend text, pixels.
const LINE_HEIGHT: i32 = 17;
/// Characters of legend text per line before it wraps.
const LEGEND_CHARS: usize = 25;

/// The palette: ten colours that stay apart on white.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
];
/// The neutral colour of samples and reference lines.
const NEUTRAL: RGBColor = RGBColor(60, 60, 60);

fn rgb(colour: Colour) -> RGBColor {
    match colour {
        Colour::Palette(i) => PALETTE[i % PALETTE.len()],
        Colour::Neutral => NEUTRAL,
    }
}

/// `(dash, gap)` in pixels of a broken stroke; `None` for solid or hidden.
fn dashes(stroke: Stroke) -> Option<(i32, i32)> {
    match stroke {
        Stroke::Solid | Stroke::Hidden => None,
        Stroke::Dashed => Some((9, 5)),
        Stroke::Dotted => Some((2, 4)),
        Stroke::LongDashed => Some((22, 6)),
        Stroke::Sparse => Some((2, 10)),
    }
}

/// The axes of `chart`: x over every point, y over the curves that did not escape and the
/// reference lines (over every curve when all of them escaped).
fn axes(chart: &Chart) -> (Resolved, Resolved) {
    let xs: Vec<f64> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0).chain(s.escaped_at))
        .collect();
    let ys_of = |escaped: bool| -> Vec<f64> {
        chart
            .series
            .iter()
            .filter(|s| s.escaped_at.is_some() == escaped)
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|v| v.is_finite())
            .collect()
    };
    let mut ys = ys_of(false);
    if ys.is_empty() {
        ys = ys_of(true);
    }
    ys.extend(chart.references.iter().map(|r| r.y));
    (Resolved::new(&chart.x, &xs), Resolved::new(&chart.y, &ys))
}

/// Draws `chart` into `area`.
pub(super) fn chart(area: &Area<'_>, chart: &Chart) -> Drawn {
    let (data_area, legend_area) = if chart.legend.is_empty() {
        (area.clone(), None)
    } else {
        let width = area.dim_in_pixel().0;
        let (data, legend) = area.split_horizontally(width.saturating_sub(LEGEND_WIDTH));
        (data, Some(legend))
    };
    let (x, y) = axes(chart);
    let mut builder = ChartBuilder::on(&data_area);
    builder
        .caption(&chart.title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(72);
    let mut plot = builder
        .build_cartesian_2d(x.coord(), y.coord())
        .map_err(|e| e.to_string())?;
    let described = |label: &str, axis: &Resolved| match axis.log {
        true => format!("{label}, log scale"),
        false => label.to_string(),
    };
    plot.configure_mesh()
        .x_desc(described(&chart.x.label, &x))
        .y_desc(described(&chart.y.label, &y))
        .x_label_formatter(&|v| x.label(*v))
        .y_label_formatter(&|v| y.label(*v))
        .bold_line_style(BLACK.mix(0.12))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(|e| e.to_string())?;
    for reference in &chart.references {
        if let Some(at) = y.to_draw(reference.y) {
            horizontal(&mut plot, at, &reference.label, &x)?;
        }
    }
    for series in &chart.series {
        curve(&mut plot, series, &x, &y)?;
    }
    match legend_area {
        Some(legend_area) => legend(&legend_area, &chart.legend),
        None => Ok(()),
    }
}

/// Draws a labelled reference line across the chart at drawing coordinate `at`.
fn horizontal(plot: &mut Plot<'_, '_>, at: f64, label: &str, x: &Resolved) -> Drawn {
    line(
        plot,
        vec![(x.range.0, at), (x.range.1, at)],
        NEUTRAL.stroke_width(1),
        Stroke::LongDashed,
    )?;
    plot.draw_series(std::iter::once(Text::new(
        label.to_string(),
        (x.range.1, at),
        ("sans-serif", 14)
            .into_font()
            .color(&NEUTRAL)
            .pos(Pos::new(HPos::Right, VPos::Bottom)),
    )))
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Draws `series`: its line and markers, and for one that escaped, only up to its last point
/// inside the range, with an × there (or on the top edge).
fn curve(plot: &mut Plot<'_, '_>, series: &Series, x: &Resolved, y: &Resolved) -> Drawn {
    let points: Vec<(f64, f64)> = series
        .points
        .iter()
        .filter_map(|&(px, py)| Some((x.to_draw(px)?, y.to_draw(py)?)))
        .collect();
    let (points, cross) = match series.escaped_at {
        None => (points, None),
        Some(at) => {
            let inside: Vec<(f64, f64)> =
                points.into_iter().take_while(|p| y.contains(p.1)).collect();
            let cross = inside
                .last()
                .copied()
                .or_else(|| x.to_draw(at).map(|ax| (ax, y.range.1)));
            (inside, cross)
        }
    };
    let colour = rgb(series.style.colour);
    line(
        plot,
        points.clone(),
        colour.stroke_width(2),
        series.style.stroke,
    )?;
    if let Some(marker) = series.style.marker {
        for &p in &points {
            mark(plot, p, marker, colour)?;
        }
    }
    match cross {
        Some(p) => mark(plot, p, Marker::Cross, colour),
        None => Ok(()),
    }
}

/// Draws `points` as one line in `style` and `stroke`.
fn line(
    plot: &mut Plot<'_, '_>,
    points: Vec<(f64, f64)>,
    style: ShapeStyle,
    stroke: Stroke,
) -> Drawn {
    let drawn = match (stroke, dashes(stroke)) {
        (Stroke::Hidden, _) => return Ok(()),
        (_, Some((dash, gap))) => plot
            .draw_series(DashedLineSeries::new(points, dash, gap, style))
            .map(|_| ()),
        (_, None) => plot.draw_series(LineSeries::new(points, style)).map(|_| ()),
    };
    drawn.map_err(|e| e.to_string())
}

/// Draws `marker` at `p`.
fn mark(plot: &mut Plot<'_, '_>, p: (f64, f64), marker: Marker, colour: RGBColor) -> Drawn {
    let drawn = match marker {
        Marker::Dot => plot
            .draw_series(std::iter::once(Circle::new(p, 4, colour.filled())))
            .map(|_| ()),
        Marker::Cross => plot
            .draw_series(std::iter::once(Cross::new(p, 6, colour.stroke_width(3))))
            .map(|_| ()),
    };
    drawn.map_err(|e| e.to_string())
}

/// `text` broken into lines of at most [`LEGEND_CHARS`] characters at spaces (a longer word
/// keeps a line of its own).
fn wrap(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= LEGEND_CHARS => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// Draws `entries` top to bottom in `area`.
fn legend(area: &Area<'_>, entries: &[LegendEntry]) -> Drawn {
    let err = |e: DrawingAreaErrorKind<_>| e.to_string();
    let text_x = 50;
    let mut top = LEGEND_TOP;
    for entry in entries {
        let (text, size, colour) = match entry {
            LegendEntry::Item(style, text) => {
                sample(area, (8, top + LINE_HEIGHT / 2), *style)?;
                (text, 15, BLACK)
            }
            LegendEntry::Note(text) => (text, 13, NEUTRAL),
        };
        for line in wrap(text) {
            area.draw(&Text::new(
                line,
                (text_x, top),
                ("sans-serif", size).into_font().color(&colour),
            ))
            .map_err(err)?;
            top += LINE_HEIGHT;
        }
        top += 5;
    }
    Ok(())
}

/// Draws a legend sample of `style`, starting at `(left, middle)`.
fn sample(area: &Area<'_>, (left, middle): (i32, i32), style: Style) -> Drawn {
    let err = |e: DrawingAreaErrorKind<_>| e.to_string();
    let colour = rgb(style.colour);
    let ends = vec![(left, middle), (left + 34, middle)];
    let stroke = colour.stroke_width(2);
    match (style.stroke, dashes(style.stroke)) {
        (Stroke::Hidden, _) => {}
        (_, Some((dash, gap))) => area
            .draw(&DashedPathElement::new(ends, dash, gap, stroke))
            .map_err(err)?,
        (_, None) => area.draw(&PathElement::new(ends, stroke)).map_err(err)?,
    }
    let centre = (left + 17, middle);
    match style.marker {
        Some(Marker::Dot) => area
            .draw(&Circle::new(centre, 4, colour.filled()))
            .map_err(err),
        Some(Marker::Cross) => area
            .draw(&Cross::new(centre, 6, colour.stroke_width(3)))
            .map_err(err),
        None => Ok(()),
    }
}
