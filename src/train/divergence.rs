//! Divergence beyond NaN: a mean training loss read back that has grown by orders of magnitude
//! over the loss before training stops the run (PyTorch Lightning's and Keras' divergence
//! threshold), as a loss or update that is no longer finite does.

use ndarray::Array2;

use super::config::TrainData;
use crate::engine::Metrics;
use crate::error::Result;
use crate::loss::Targets;

/// Training rows on which the loss before the first step is measured.
pub const REFERENCE_ROWS: usize = 1024;

/// Up to [`REFERENCE_ROWS`] training rows, evenly spaced, on which the loss before training is
/// measured for the divergence threshold.
pub(crate) fn reference_rows(data: &TrainData) -> Result<(Array2<f32>, Targets)> {
    let rows = data.rows();
    let indices: Vec<u32> = (0..rows)
        .step_by(rows.div_ceil(REFERENCE_ROWS).max(1))
        .map(|r| r as u32)
        .collect();
    let mut features = Array2::zeros((0, 0));
    let targets = data.source().gather(&indices, &mut features)?;
    Ok((features, targets))
}

/// The mean training loss above which a model counts as diverged, from its loss `start` before
/// training: `threshold · max(1, start)`; none when there is no threshold or `start` is not
/// finite.
pub(crate) fn loss_limit(threshold: Option<f64>, start: f64) -> Option<f64> {
    threshold
        .filter(|t| *t > 0.0)
        .filter(|_| start.is_finite())
        .map(|t| t * start.max(1.0))
}

/// Why a mean training loss read back shows divergence: not finite, or over `limit`.
pub(crate) fn loss_divergence(
    m: &Metrics,
    limit: Option<f64>,
    threshold: Option<f64>,
) -> Option<String> {
    m.divergence().or_else(|| {
        let (limit, loss) = (limit?, m.loss());
        (m.rows > 0 && loss > limit).then(|| {
            format!(
                "the mean training loss grew to {loss:.3e}, over {}× its value before training \
                 (--divergence-threshold)",
                crate::error::readable(threshold.unwrap_or_default())
            )
        })
    })
}
