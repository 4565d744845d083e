//! An axis resolved from the values it has to show: linear or logarithmic, its range and its
//! ticks. A logarithmic axis is drawn on the base-10 logarithm of the values, so its range and
//! ticks are in those drawing coordinates.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;

use super::number::tick;
use super::{Axis, Scale, Ticks};

/// About how many labelled ticks an automatic axis aims for.
const TARGET_TICKS: f64 = 7.0;

/// An axis ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Resolved {
    /// Drawn on log10 of the values.
    pub log: bool,
    /// The drawn range, in drawing coordinates.
    pub range: (f64, f64),
    /// Labelled ticks, in drawing coordinates.
    pub ticks: Vec<f64>,
}

/// The round step (1, 2 or 5 times a power of ten) at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude)
}

/// Multiples of `step` from the one at or below `lo` to the one at or above `hi`, when `widen`;
/// else only those inside `[lo, hi]`.
fn multiples(lo: f64, hi: f64, step: f64, widen: bool) -> Vec<f64> {
    let slack = 1e-9;
    let (first, last) = if widen {
        ((lo / step + slack).floor(), (hi / step - slack).ceil())
    } else {
        ((lo / step - slack).ceil(), (hi / step + slack).floor())
    };
    let count = (last - first).max(0.0) as usize;
    (0..=count).map(|i| (first + i as f64) * step).collect()
}

/// `(lo, hi)` widened by `fraction` of its span on each side, or by `fraction` of the value
/// itself (at least 0.1 of a unit) when the span is zero.
fn padded(lo: f64, hi: f64, fraction: f64) -> (f64, f64) {
    let span = hi - lo;
    let pad = if span > 0.0 {
        span * fraction
    } else {
        (lo.abs() * fraction).max(0.1)
    };
    (lo - pad, hi + pad)
}

impl Resolved {
    /// The axis `axis` for `values` (non-finite ones ignored; with none, a unit range).
    pub fn new(axis: &Axis, values: &[f64]) -> Self {
        let at = match &axis.ticks {
            Ticks::At(at) => Some(at.as_slice()),
            Ticks::Auto | Ticks::Whole => None,
        };
        let finite: Vec<f64> = values
            .iter()
            .chain(at.unwrap_or_default())
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        let positive: Vec<f64> = finite.iter().copied().filter(|&v| v > 0.0).collect();
        let (lo, hi) = bounds(&finite).unwrap_or((0.0, 1.0));
        let log = match axis.scale {
            Scale::Linear => false,
            Scale::Log => !positive.is_empty(),
            Scale::Auto => lo > 0.0 && hi / lo > 20.0,
        };
        if log {
            let (lo, hi) = bounds(&positive).unwrap_or((1.0, 10.0));
            Self::logarithmic(lo, hi, at)
        } else {
            Self::linear(lo, hi, at, axis.ticks == Ticks::Whole)
        }
    }

    fn linear(lo: f64, hi: f64, at: Option<&[f64]>, whole: bool) -> Self {
        if let Some(at) = at {
            return Self {
                log: false,
                range: padded(lo, hi, 0.05),
                ticks: at.iter().copied().filter(|v| v.is_finite()).collect(),
            };
        }
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else {
            padded(lo, hi, 0.1)
        };
        let mut step = nice_step((hi - lo) / TARGET_TICKS);
        if whole {
            step = step.max(1.0);
        }
        let ticks = multiples(lo, hi, step, true);
        // A margin beyond the outer ticks keeps markers there clear of the frame.
        let range = match (ticks.first(), ticks.last()) {
            (Some(&first), Some(&last)) => padded(first, last, 0.02),
            _ => (lo, hi),
        };
        Self {
            log: false,
            range,
            ticks,
        }
    }

    fn logarithmic(lo: f64, hi: f64, at: Option<&[f64]>) -> Self {
        let (plo, phi) = (lo.log10(), hi.log10());
        let range = if phi - plo > 1e-9 {
            padded(plo, phi, if at.is_some() { 0.06 } else { 0.03 })
        } else {
            (plo - 0.15, phi + 0.15)
        };
        let ticks: Vec<f64> = match at {
            Some(at) => at.to_vec(),
            None => log_ticks(10f64.powf(range.0), 10f64.powf(range.1)),
        };
        Self {
            log: true,
            range,
            ticks: ticks
                .into_iter()
                .filter(|&v| v > 0.0 && v.is_finite())
                .map(f64::log10)
                .collect(),
        }
    }

    /// `v` in drawing coordinates, or `None` when it cannot be drawn (not finite, or at or below
    /// zero on a logarithmic axis).
    pub fn to_draw(&self, v: f64) -> Option<f64> {
        match (v.is_finite(), self.log) {
            (false, _) => None,
            (true, true) => (v > 0.0).then(|| v.log10()),
            (true, false) => Some(v),
        }
    }

    /// Whether drawing coordinate `d` lies inside the range.
    pub fn contains(&self, d: f64) -> bool {
        let slack = (self.range.1 - self.range.0).abs() * 1e-9;
        d >= self.range.0 - slack && d <= self.range.1 + slack
    }

    /// The coordinate plotters draws on: the range, with grid lines and labels at the ticks
    /// alone.
    pub fn coord(&self) -> Ticked {
        Ticked {
            inner: (self.range.0..self.range.1).into(),
            ticks: self.ticks.clone(),
        }
    }

    /// The label of the tick at drawing coordinate `d`.
    pub fn label(&self, d: f64) -> String {
        tick(if self.log { 10f64.powf(d) } else { d })
    }
}

/// A linear coordinate whose grid lines and labels sit at given ticks only.
pub(super) struct Ticked {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// The smallest and largest of `values`, if any.
fn bounds(values: &[f64]) -> Option<(f64, f64)> {
    let lo = values.iter().copied().reduce(f64::min)?;
    let hi = values.iter().copied().reduce(f64::max)?;
    Some((lo, hi))
}

/// Ticks for a logarithmic axis over `[lo, hi]`: 1, 2 and 5 times each power of ten when they
/// are few enough, decades alone (every few when there are many) otherwise, and round linear
/// steps when the range holds fewer than two of those.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let inside = |v: &f64| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9);
    let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let decades: Vec<f64> = (first..=last)
        .map(|k| 10f64.powi(k))
        .filter(inside)
        .collect();
    let all: Vec<f64> = (first..=last)
        .flat_map(|k| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(k)))
        .filter(inside)
        .collect();
    if all.len() <= 10 && all.len() >= 2 {
        all
    } else if decades.len() > 10 {
        let every = decades.len().div_ceil(8);
        decades.into_iter().step_by(every).collect()
    } else if decades.len() >= 3 {
        decades
    } else {
        multiples(lo, hi, nice_step((hi - lo) / 5.0), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(scale: Scale, ticks: Ticks) -> Axis {
        Axis {
            label: String::new(),
            scale,
            ticks,
        }
    }

    #[test]
    fn sixty_epochs_get_ticks_every_ten() {
        let epochs: Vec<f64> = (1..=60).map(f64::from).collect();
        let a = Resolved::new(&axis(Scale::Linear, Ticks::Whole), &epochs);
        assert!(!a.log);
        assert_eq!(a.ticks, [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]);
        assert!(a.range.0 < 0.0 && a.range.0 > -2.0 && a.range.1 > 60.0 && a.range.1 < 62.0);
        let three = Resolved::new(&axis(Scale::Linear, Ticks::Whole), &[1.0, 2.0, 3.0]);
        assert!(three.ticks.iter().all(|t| t.fract() == 0.0), "{three:?}");
    }

    #[test]
    fn log_axes_tick_round_values_and_keep_given_ones() {
        let a = Resolved::new(&axis(Scale::Log, Ticks::Auto), &[0.09, 2.3]);
        let labels: Vec<String> = a.ticks.iter().map(|&t| a.label(t)).collect();
        assert_eq!(labels, ["0.1", "0.2", "0.5", "1", "2"]);
        let many = Resolved::new(&axis(Scale::Auto, Ticks::Auto), &[1e-3, 1e30]);
        assert!(many.log && many.ticks.len() <= 10, "{many:?}");
        let at = Resolved::new(
            &axis(Scale::Log, Ticks::At(vec![24.0, 96.0])),
            &[24.0, 96.0],
        );
        let labels: Vec<String> = at.ticks.iter().map(|&t| at.label(t)).collect();
        assert_eq!(labels, ["24", "96"]);
        assert!(at.range.0 < 24f64.log10() && at.range.1 > 96f64.log10());
    }

    #[test]
    fn narrow_and_empty_ranges_still_have_ticks() {
        let narrow = Resolved::new(&axis(Scale::Log, Ticks::Auto), &[0.101, 0.109]);
        assert!(narrow.ticks.len() >= 2, "{narrow:?}");
        let empty = Resolved::new(&axis(Scale::Auto, Ticks::Auto), &[f64::NAN]);
        assert!(empty.range.0 <= 0.0 && empty.range.1 >= 1.0, "{empty:?}");
        assert!(empty.ticks.len() >= 2, "{empty:?}");
        let flat = Resolved::new(&axis(Scale::Auto, Ticks::Auto), &[5.0, 5.0]);
        assert!(flat.range.0 < 5.0 && flat.range.1 > 5.0);
    }
}
