//! The learning-rate range test (Leslie N. Smith, "Cyclical Learning Rates for Training Neural
//! Networks", 2015; fastai's `lr_find`): from the initial parameters, one pass over `N`
//! mini-batches with the learning rate growing exponentially,
//!
//! ```text
//! lr_i = start · (end / start)^(i / (N − 1)),   i = 0 … N − 1
//! ```
//!
//! recording each step's loss `L_i` (measured before that step's update) and its exponential
//! moving average with bias correction,
//!
//! ```text
//! a_i = β · a_{i−1} + (1 − β) · L_i,   a_{−1} = 0,   s_i = a_i / (1 − β^(i+1)),   β = 0.98
//! ```
//!
//! The test stops early when `s_i` exceeds [`STOP_FACTOR`] times the lowest `s` so far, or is
//! not finite. The suggested learning rate is where the smoothed loss falls fastest against
//! log lr (fastai's "steep"; see [`suggest`]).

use crate::data::scheduler::Order;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::train::{Feed, Residency, TrainData, check_data, place};

/// `β`, the smoothing of the loss.
pub const SMOOTHING: f64 = 0.98;

/// The test stops when the smoothed loss exceeds this many times its lowest value.
pub const STOP_FACTOR: f64 = 4.0;

/// How to run the test.
#[derive(Debug, Clone, PartialEq)]
pub struct LrFindConfig {
    /// The learning rate of the first step.
    pub start_lr: f64,
    /// The learning rate of the last step.
    pub end_lr: f64,
    /// Steps `N` (epochs wrap when the data has fewer batches).
    pub steps: u64,
    /// Rows per batch.
    pub batch_size: usize,
    /// Reshuffle every epoch.
    pub shuffle: bool,
    /// Drop each epoch's last partial batch.
    pub drop_last: bool,
    /// Seed of the epoch order.
    pub seed: u64,
    /// Clip gradients to this global norm.
    pub clip_norm: Option<f32>,
    /// Resident or streamed batches.
    pub residency: Residency,
}

impl LrFindConfig {
    /// `lr_i = start · (end / start)^(i / (N − 1))`.
    pub fn lr(&self, i: u64) -> f64 {
        let fraction = i as f64 / (self.steps.max(2) - 1) as f64;
        self.start_lr * (self.end_lr / self.start_lr).powf(fraction)
    }

    /// Refuses a range that is empty, not positive or not finite, and fewer than two steps
    /// ([`lr_find`] checks too; call it to refuse them before any work).
    pub fn validate(&self) -> Result<()> {
        if !(self.start_lr.is_finite() && self.start_lr > 0.0) {
            return Err(Error::Usage(format!(
                "--start-lr {} must be a positive number",
                self.start_lr
            )));
        }
        if !(self.end_lr.is_finite() && self.end_lr > self.start_lr) {
            return Err(Error::Usage(format!(
                "--end-lr {} must be a number above --start-lr {}",
                self.end_lr, self.start_lr
            )));
        }
        if self.steps < 2 {
            return Err(Error::Usage(format!(
                "--steps {} is too few to draw a curve; give at least 2 (200 is the default)",
                self.steps
            )));
        }
        Ok(())
    }
}

/// One step of the test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrPoint {
    /// The step `i`, from 0.
    pub step: u64,
    /// Its learning rate `lr_i`.
    pub lr: f64,
    /// Its mean training loss `L_i`, before its update.
    pub loss: f64,
    /// The smoothed, bias-corrected loss `s_i`.
    pub smoothed_loss: f64,
}

/// What the test found.
#[derive(Debug, Clone, PartialEq)]
pub struct LrFindReport {
    /// Every step taken, in order.
    pub points: Vec<LrPoint>,
    /// The learning rate where the smoothed loss falls fastest; `None` when it never fell.
    pub suggested_lr: Option<f64>,
    /// The step at which the smoothed loss exceeded [`STOP_FACTOR`] times its lowest value or
    /// stopped being finite, if it did before the last step.
    pub stopped_at: Option<u64>,
    /// Whether batches were gathered from data resident on the device.
    pub resident: bool,
}

/// Runs the test on `engine` from its current parameters over `data`. The engine is left as the
/// test leaves it (trained at rising rates): build a fresh one to train.
pub fn lr_find(
    engine: &mut dyn Engine,
    data: &TrainData,
    config: &LrFindConfig,
) -> Result<LrFindReport> {
    config.validate()?;
    check_data(&engine.setup(0), data, None)?;
    let order = Order::new(
        data.rows(),
        config.batch_size,
        config.shuffle,
        config.drop_last,
        config.seed,
    )?;
    engine.set_clip_norm(config.clip_norm)?;
    let resident = place(config.residency, data, |d| engine.load_resident(d))?.is_none();
    let mut feed = Feed::new(data, order, resident, (0, 0), config.steps);
    // Whatever was accumulated before is not part of the test.
    engine.take_metrics()?;

    let mut points = Vec::new();
    let (mut average, mut lowest) = (0.0, f64::INFINITY);
    let mut stopped_at = None;
    for i in 0..config.steps {
        let lr = config.lr(i);
        engine.set_learning_rate(lr)?;
        feed.nth(i, |input| input.step(engine))?;
        let metrics = engine.take_metrics()?[0];
        let loss = metrics.loss();
        average = SMOOTHING * average + (1.0 - SMOOTHING) * loss;
        let smoothed_loss = average / (1.0 - SMOOTHING.powi(i as i32 + 1));
        points.push(LrPoint {
            step: i,
            lr,
            loss,
            smoothed_loss,
        });
        if !smoothed_loss.is_finite()
            || metrics.divergence().is_some()
            || smoothed_loss > STOP_FACTOR * lowest
        {
            if i + 1 < config.steps {
                stopped_at = Some(i);
            }
            break;
        }
        lowest = lowest.min(smoothed_loss);
    }
    Ok(LrFindReport {
        suggested_lr: suggest(&points, config.steps),
        points,
        stopped_at,
        resident,
    })
}

/// The suggested learning rate, as fastai's `lr_find` chooses it: the curve of smoothed losses
/// cut at its first value that is not finite and trimmed of its first `planned_steps / 10`
/// points and its last 5 (the untrained start and the blow-up; the whole finite curve when
/// fewer than two points would be left), then [`steepest`] on it.
pub fn suggest(points: &[LrPoint], planned_steps: u64) -> Option<f64> {
    let finite = points
        .iter()
        .position(|p| !p.smoothed_loss.is_finite())
        .unwrap_or(points.len());
    let (start, end) = ((planned_steps / 10) as usize, finite.saturating_sub(5));
    let curve = if end >= start + 2 {
        &points[start..end]
    } else {
        &points[..finite]
    };
    let lrs: Vec<f64> = curve.iter().map(|p| p.lr).collect();
    let losses: Vec<f64> = curve.iter().map(|p| p.smoothed_loss).collect();
    steepest(&lrs, &losses).map(|i| lrs[i])
}

/// The index `i` of the steepest descent of `losses` against log lr: the most negative
///
/// ```text
/// g_i = (s_{i+1} − s_i) / (ln lr_{i+1} − ln lr_i)
/// ```
///
/// (fastai's `steep`, which also answers with the left end of that segment). `None` when there
/// are fewer than two points or no segment descends.
pub fn steepest(lrs: &[f64], losses: &[f64]) -> Option<usize> {
    let gradients = lrs
        .windows(2)
        .zip(losses.windows(2))
        .map(|(lr, s)| (s[1] - s[0]) / (lr[1].ln() - lr[0].ln()));
    gradients
        .enumerate()
        .filter(|(_, g)| g.is_finite() && *g < 0.0)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::builtin;
    use crate::{Activation, CpuEngine, Loss, ModelSpec, Optimizer, Parameters, Setup};
    use std::sync::Arc;

    fn config(steps: u64, start_lr: f64, end_lr: f64) -> LrFindConfig {
        LrFindConfig {
            start_lr,
            end_lr,
            steps,
            batch_size: 16,
            shuffle: true,
            drop_last: false,
            seed: 0,
            clip_norm: None,
            residency: Residency::Auto,
        }
    }

    #[test]
    fn the_rate_grows_geometrically_from_start_to_end() {
        let c = config(5, 1e-4, 1.0);
        let lrs: Vec<f64> = (0..5).map(|i| c.lr(i)).collect();
        for (lr, want) in lrs.iter().zip([1e-4, 1e-3, 1e-2, 1e-1, 1.0]) {
            assert!((lr / want - 1.0).abs() < 1e-12, "{lrs:?}");
        }
    }

    #[test]
    fn the_steepest_descent_of_a_synthetic_curve() {
        // s = -tanh(ln(lr / 1e-3)) + a rise past 1: falls fastest at lr = 1e-3.
        let lrs: Vec<f64> = (0..=80)
            .map(|i| 1e-6 * 10f64.powf(i as f64 / 10.0))
            .collect();
        let losses: Vec<f64> = lrs
            .iter()
            .map(|lr| 2.0 - (lr / 1e-3).ln().tanh() + (lr - 1.0).max(0.0).powi(2))
            .collect();
        let i = steepest(&lrs, &losses).unwrap();
        // The left end of the steepest segment: 1e-3 lies within that segment.
        assert!(lrs[i] <= 1e-3 && 1e-3 <= lrs[i + 1], "{}", lrs[i]);
        // A curve that only rises suggests nothing.
        assert_eq!(steepest(&lrs, &lrs), None);
        assert_eq!(steepest(&[1e-3], &[1.0]), None);
    }

    #[test]
    fn the_suggestion_skips_the_start_and_the_blow_up() {
        // Steepest of all at the very start and at the end, past the trimmed points; the
        // steepest within is at step 50.
        let points: Vec<LrPoint> = (0..100u64)
            .map(|i| {
                let smoothed_loss = match i {
                    0..=9 => 100.0 - 9.0 * i as f64,
                    95.. => f64::NAN,
                    _ => 10.0 - (i as f64 - 50.0).atan(),
                };
                LrPoint {
                    step: i,
                    lr: 10f64.powf(i as f64 / 10.0 - 7.0),
                    loss: smoothed_loss,
                    smoothed_loss,
                }
            })
            .collect();
        let lr = suggest(&points, 100).unwrap();
        let step = points.iter().position(|p| p.lr == lr).unwrap();
        assert!((49..=50).contains(&step), "{step}");
    }

    #[test]
    fn a_run_on_blobs_records_the_curve_and_stops_when_the_loss_blows_up() {
        let data = builtin::blobs(256, 4, 3, 0);
        let model =
            ModelSpec::from_widths(&[4, 16, 3], Activation::Relu, Activation::Identity).unwrap();
        let setup = Setup {
            model: model.clone(),
            loss: Loss::CrossEntropy,
            optimizer: Optimizer::Sgd(Default::default()),
        };
        let mut engine = CpuEngine::new(setup, &Parameters::init(&model, 0)).unwrap();
        let data = TrainData::Memory(Arc::new(data));
        let c = config(100, 1e-5, 1e4);
        let report = lr_find(&mut engine, &data, &c).unwrap();
        let stopped = report.stopped_at.expect("SGD at lr 1e4 blows up");
        assert_eq!(report.points.len() as u64, stopped + 1);
        for (i, p) in report.points.iter().enumerate() {
            assert_eq!(p.step, i as u64);
            assert_eq!(p.lr, c.lr(i as u64));
        }
        // Step 0: the bias-corrected average is the loss itself.
        assert!((report.points[0].smoothed_loss - report.points[0].loss).abs() < 1e-12);
        let lr = report.suggested_lr.expect("the loss falls somewhere");
        assert!(lr > 1e-5 && lr < report.points[stopped as usize].lr, "{lr}");
    }
}
