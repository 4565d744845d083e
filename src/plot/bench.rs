//! The charts of `bench batch-size`: throughput against batch size, and training loss against
//! wall time. On both, colour stands for the batch size and the stroke for the engine.

use super::{
    Axis, Chart, Colour, LegendEntry, Marker, Reference, Scale, Series, Stroke, Style, Ticks,
    distinct,
};
use crate::tools::BatchRow;

/// `gpu (on ADAPTER)` or `cpu`.
fn engine_name(engine: &str, adapter: &str) -> String {
    match engine {
        "gpu" => format!("gpu ({adapter})"),
        other => other.to_string(),
    }
}

/// Throughput against batch size, with a marker at every measured size and ticks at exactly
/// those sizes, and the training loss of every engine and batch size against wall time, with
/// `target_loss` drawn as a line. `adapter` names the GPU in the titles and legends.
pub fn batch_size_charts(rows: &[BatchRow], adapter: &str, target_loss: Option<f64>) -> Vec<Chart> {
    let engines = distinct(rows.iter().map(|r| r.engine.as_str()));
    let sizes = distinct(rows.iter().map(|r| r.batch_size));
    let colour =
        |r: &BatchRow| Colour::Palette(sizes.iter().position(|&b| b == r.batch_size).unwrap_or(0));
    let stroke = |e: &str| Stroke::nth(engines.iter().position(|&n| n == e).unwrap_or(0));
    let engine_entries: Vec<LegendEntry> = engines
        .iter()
        .map(|e| {
            LegendEntry::Item(
                Style::line(Colour::Neutral, stroke(e)),
                engine_name(e, adapter),
            )
        })
        .collect();
    let size_entries = |marker: Option<Marker>, stroke: Stroke| -> Vec<LegendEntry> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, b)| {
                LegendEntry::Item(
                    Style {
                        colour: Colour::Palette(i),
                        stroke,
                        marker,
                    },
                    format!("batch {b}"),
                )
            })
            .collect()
    };

    let mut throughput: Vec<Series> = engines
        .iter()
        .map(|e| Series {
            points: rows
                .iter()
                .filter(|r| r.engine == *e)
                .map(|r| (r.batch_size as f64, r.samples_per_second))
                .collect(),
            style: Style::line(Colour::Neutral, stroke(e)),
            escaped_at: None,
        })
        .collect();
    throughput.extend(rows.iter().map(|r| Series {
        points: vec![(r.batch_size as f64, r.samples_per_second)],
        style: Style {
            colour: colour(r),
            stroke: Stroke::Hidden,
            marker: Some(Marker::Dot),
        },
        escaped_at: None,
    }));
    let mut sorted: Vec<f64> = sizes.iter().map(|&b| b as f64).collect();
    sorted.sort_by(f64::total_cmp);
    let names: Vec<String> = engines.iter().map(|e| engine_name(e, adapter)).collect();

    let curves = rows
        .iter()
        .map(|r| Series {
            points: r.curve.clone(),
            style: Style::line(colour(r), stroke(&r.engine)),
            escaped_at: None,
        })
        .collect();
    let references: Vec<Reference> = target_loss
        .map(|t| Reference {
            y: t,
            label: format!("target loss {t}"),
        })
        .into_iter()
        .collect();
    let mut loss_legend = size_entries(None, Stroke::Solid);
    loss_legend.extend(engine_entries.iter().cloned());
    if let Some(t) = target_loss {
        loss_legend.push(LegendEntry::Item(
            Style::line(Colour::Neutral, Stroke::LongDashed),
            format!("target loss {t}"),
        ));
    }
    let mut throughput_legend = engine_entries;
    throughput_legend.extend(size_entries(Some(Marker::Dot), Stroke::Hidden));
    throughput_legend.push(LegendEntry::Note(
        "Steps run back to back, nothing waited on between them.".into(),
    ));

    vec![
        Chart {
            title: format!("throughput against batch size: {}", names.join(" and ")),
            x: Axis::new("batch size (rows)", Scale::Log).with_ticks(Ticks::At(sorted)),
            y: Axis::new("samples per second", Scale::Auto),
            series: throughput,
            references: Vec::new(),
            legend: throughput_legend,
        },
        Chart {
            title: "training loss against wall time".into(),
            x: Axis::new("wall time (s)", Scale::Linear),
            y: Axis::new("training loss (mean between read-backs)", Scale::Auto),
            series: curves,
            references,
            legend: loss_legend,
        },
    ]
}
