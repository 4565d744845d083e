//! The charts of one training run: loss against epoch, and accuracy against epoch for
//! classification losses.

use super::{Axis, Chart, Colour, LegendEntry, Marker, Scale, Series, Stroke, Style, Ticks};
use crate::loss::Loss;
use crate::train::EpochRecord;

/// Curves with at most this many points get a marker at each.
const MARKED_POINTS: usize = 40;

/// Training in the first colour, validation in the second, dashed, on both panels.
fn styles(points: usize) -> [Style; 2] {
    let marker = (points <= MARKED_POINTS).then_some(Marker::Dot);
    [
        Style {
            colour: Colour::Palette(0),
            stroke: Stroke::Solid,
            marker,
        },
        Style {
            colour: Colour::Palette(1),
            stroke: Stroke::Dashed,
            marker,
        },
    ]
}

/// What a curve reads from each record.
type Field<'a> = &'a dyn Fn(&EpochRecord) -> Option<f64>;

/// `f` of each record against its epoch, where it has a value.
fn curve(records: &[EpochRecord], f: impl Fn(&EpochRecord) -> Option<f64>) -> Vec<(f64, f64)> {
    records
        .iter()
        .filter_map(|r| f(r).map(|y| (r.epoch as f64, y)))
        .collect()
}

/// One panel: training and, when `validation`, validation curves of `f` against the epoch.
fn panel(
    records: &[EpochRecord],
    title: String,
    y: Axis,
    names: [&str; 2],
    curves: [Field<'_>; 2],
    validation: bool,
) -> Chart {
    let styles = styles(records.len());
    let shown = if validation { 2 } else { 1 };
    Chart {
        title,
        x: Axis::new("epoch", Scale::Linear).with_ticks(Ticks::Whole),
        y,
        series: (0..shown)
            .map(|i| Series {
                points: curve(records, curves[i]),
                style: styles[i],
                escaped_at: None,
            })
            .collect(),
        references: Vec::new(),
        legend: (0..shown)
            .map(|i| LegendEntry::Item(styles[i], names[i].to_string()))
            .collect(),
    }
}

/// Training (and, with `validation`, validation) loss against the epoch; and when the records
/// carry accuracy (classification losses), a second panel of accuracy against the epoch.
pub fn training_charts(records: &[EpochRecord], loss: Loss, validation: bool) -> Vec<Chart> {
    let mut charts = vec![panel(
        records,
        format!("{} loss", loss.name()),
        Axis::new("loss (mean per sample)", Scale::Auto),
        ["train loss", "validation loss"],
        [&|r| Some(r.train_loss), &|r| r.val_loss],
        validation,
    )];
    if records.iter().any(|r| r.train_accuracy.is_some()) {
        let percent = |v: Option<f64>| v.map(|a| 100.0 * a);
        charts.push(panel(
            records,
            "accuracy".into(),
            Axis::new("accuracy (% of rows)", Scale::Linear),
            ["train accuracy", "validation accuracy"],
            [&|r| percent(r.train_accuracy), &|r| percent(r.val_accuracy)],
            validation,
        ));
    }
    charts
}
