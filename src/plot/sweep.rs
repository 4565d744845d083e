//! The chart of a sweep: one loss curve per model against the step, coloured by learning rate
//! and stroked by the other hyperparameters, restarts sharing both.

use super::{
    Axis, Chart, Colour, LegendEntry, Marker, Scale, Series, Stroke, Style, Ticks, distinct,
};
use crate::loss::Loss;
use crate::train::ModelRun;
use crate::train::sweep::{Grid, Setting, SweepReport};

/// What sets a model apart besides its learning rate and seed.
type Others = (Option<f64>, Option<f64>);

fn others(s: &Setting) -> Others {
    (s.momentum, s.weight_decay)
}

/// `momentum 0.9, weight decay 0.0001`, or `None` when the sweep varies neither.
fn describe_others((momentum, weight_decay): Others) -> Option<String> {
    let parts: Vec<String> = momentum
        .map(|m| format!("momentum {m}"))
        .into_iter()
        .chain(weight_decay.map(|w| format!("weight decay {w}")))
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The curve a model is judged by: its validation loss after each epoch when `validation`,
/// else its training loss at every read-back, against the step.
fn points(run: &ModelRun, validation: bool) -> Vec<(f64, f64)> {
    if validation {
        run.epochs
            .iter()
            .filter_map(|r| r.val_loss.map(|l| (r.step as f64, l)))
            .collect()
    } else {
        run.curve.iter().map(|&(s, l)| (s as f64, l)).collect()
    }
}

/// One curve per model of `report` (in the order of `settings`) on a log scale: the validation
/// loss after each epoch when there is validation data (the loss that picks the best model), the
/// training loss otherwise. The y range is that of the models that did not diverge; each
/// diverged one is drawn until it leaves it and marked with an × there. Colour stands for the
/// learning rate, the stroke for momentum and weight decay; the legend has one entry per
/// colour and per stroke, one for the diverged and one for the best model.
pub fn sweep_chart(report: &SweepReport, settings: &[Setting], grid: &Grid, loss: Loss) -> Chart {
    let validation = report
        .models
        .iter()
        .any(|m| m.epochs.iter().any(|r| r.val_loss.is_some()));
    let rates = distinct(settings.iter().map(|s| s.lr));
    let variants = distinct(settings.iter().map(others));
    let style = |s: &Setting| {
        Style::line(
            Colour::Palette(rates.iter().position(|&r| r == s.lr).unwrap_or(0)),
            Stroke::nth(variants.iter().position(|&o| o == others(s)).unwrap_or(0)),
        )
    };
    let mut series: Vec<Series> = report
        .models
        .iter()
        .zip(settings)
        .map(|(run, s)| {
            let points = points(run, validation);
            Series {
                escaped_at: run
                    .diverged
                    .as_ref()
                    .map(|d| points.first().map_or(d.step as f64, |p| p.0)),
                points,
                style: style(s),
            }
        })
        .collect();
    let mut legend: Vec<LegendEntry> = rates
        .iter()
        .enumerate()
        .map(|(i, lr)| {
            LegendEntry::Item(
                Style::line(Colour::Palette(i), Stroke::Solid),
                format!("lr {lr}"),
            )
        })
        .collect();
    if variants.len() > 1 {
        legend.extend(variants.iter().enumerate().filter_map(|(j, &o)| {
            describe_others(o)
                .map(|text| LegendEntry::Item(Style::line(Colour::Neutral, Stroke::nth(j)), text))
        }));
    }
    let diverged = report
        .models
        .iter()
        .filter(|m| m.diverged.is_some())
        .count();
    if diverged > 0 {
        legend.push(LegendEntry::Item(
            Style {
                colour: Colour::Neutral,
                stroke: Stroke::Hidden,
                marker: Some(Marker::Cross),
            },
            format!(
                "diverged ({diverged} of {}), marked where it left the range",
                report.models.len()
            ),
        ));
    }
    if let Some(best) = report.best
        && let (Some(run), Some(s)) = (report.models.get(best), settings.get(best))
    {
        let dot = Style {
            colour: style(s).colour,
            stroke: Stroke::Hidden,
            marker: Some(Marker::Dot),
        };
        series.push(Series {
            points: points(run, validation)
                .last()
                .copied()
                .into_iter()
                .collect(),
            style: dot,
            escaped_at: None,
        });
        legend.push(LegendEntry::Item(
            Style {
                colour: Colour::Neutral,
                ..dot
            },
            format!("best: model {best}, {}", s.label(grid)),
        ));
    }
    if grid.restarts > 1 {
        legend.push(LegendEntry::Note(format!(
            "The {} restarts of each setting (seeds {} to {}) share its colour and line.",
            grid.restarts,
            grid.seed,
            grid.seed + grid.restarts - 1
        )));
    }
    let which = if validation { "validation" } else { "training" };
    Chart {
        title: format!(
            "{} {which} loss of {} models",
            loss.name(),
            report.models.len()
        ),
        x: Axis::new("step", Scale::Linear).with_ticks(Ticks::Whole),
        y: Axis::new(
            if validation {
                "validation loss after each epoch"
            } else {
                "training loss (mean between read-backs)"
            },
            Scale::Log,
        ),
        series,
        references: Vec::new(),
        legend,
    }
}
