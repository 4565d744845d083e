//! Scores of a model's outputs against targets, as scikit-learn reports them: for regression the
//! coefficient of determination, mean absolute error and root mean squared error; for
//! classification accuracy, per-class precision, recall and F1, and the confusion matrix.

use ndarray::ArrayView2;

use crate::loss::TargetsView;

/// Regression scores over every output column together (scikit-learn's `uniform_average` for R²,
/// the mean over all entries for the errors).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RegressionScores {
    /// `R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)²` per output column, averaged over the columns (ȳ the
    /// column's mean; a constant column scores 1 when predicted exactly, else 0, as
    /// `r2_score` does).
    pub r2: f64,
    /// `MAE = mean |y − ŷ|`.
    pub mae: f64,
    /// `RMSE = √(mean (y − ŷ)²)`.
    pub rmse: f64,
}

/// One class's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassScores {
    /// `TP / (TP + FP)`: of the rows predicted as this class, the fraction that are (0 when
    /// none were predicted, as scikit-learn's `zero_division=0`).
    pub precision: f64,
    /// `TP / (TP + FN)`: of the rows of this class, the fraction found (0 when it has none).
    pub recall: f64,
    /// `2·P·R / (P + R)` (0 when both are 0).
    pub f1: f64,
    /// Rows whose target is this class.
    pub support: u64,
}

/// Classification scores.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassificationScores {
    /// Rows predicted right over all rows.
    pub accuracy: f64,
    /// Per class, in class order.
    pub classes: Vec<ClassScores>,
    /// `confusion[t][p]`: rows of target class `t` predicted as `p`.
    pub confusion: Vec<Vec<u64>>,
}

impl ClassificationScores {
    /// The unweighted mean of precision, recall and F1 over the classes that occur among the
    /// targets or the predictions (scikit-learn's `macro avg`), with the rows in all as support.
    pub fn macro_average(&self) -> ClassScores {
        let present: Vec<&ClassScores> = self
            .classes
            .iter()
            .enumerate()
            .filter(|(k, c)| c.support > 0 || self.confusion.iter().any(|row| row[*k] > 0))
            .map(|(_, c)| c)
            .collect();
        let n = present.len().max(1) as f64;
        let mean = |f: fn(&ClassScores) -> f64| present.iter().map(|c| f(c)).sum::<f64>() / n;
        ClassScores {
            precision: mean(|c| c.precision),
            recall: mean(|c| c.recall),
            f1: mean(|c| c.f1),
            support: self.classes.iter().map(|c| c.support).sum(),
        }
    }
}

/// Regression scores of `outputs` against `targets` (same shape).
pub fn regression(outputs: ArrayView2<'_, f32>, targets: ArrayView2<'_, f32>) -> RegressionScores {
    let n = outputs.len().max(1) as f64;
    let (mut abs, mut sq) = (0.0, 0.0);
    for (&p, &y) in outputs.iter().zip(targets.iter()) {
        let e = f64::from(y) - f64::from(p);
        abs += e.abs();
        sq += e * e;
    }
    let columns = targets.ncols().max(1);
    let r2 = (0..targets.ncols())
        .map(|j| {
            let y = targets.column(j);
            let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / y.len().max(1) as f64;
            let total: f64 = y.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum();
            let residual: f64 = y
                .iter()
                .zip(outputs.column(j))
                .map(|(&v, &p)| (f64::from(v) - f64::from(p)).powi(2))
                .sum();
            match (total > 0.0, residual > 0.0) {
                (true, _) => 1.0 - residual / total,
                (false, false) => 1.0,
                (false, true) => 0.0,
            }
        })
        .sum::<f64>()
        / columns as f64;
    RegressionScores {
        r2,
        mae: abs / n,
        rmse: (sq / n).sqrt(),
    }
}

/// Classification scores of `predicted` against `targets` over `classes` classes.
pub fn classification(predicted: &[u32], targets: &[u32], classes: usize) -> ClassificationScores {
    let classes = classes.max(
        predicted
            .iter()
            .chain(targets)
            .map(|&c| c as usize + 1)
            .max()
            .unwrap_or(0),
    );
    let mut confusion = vec![vec![0u64; classes]; classes];
    for (&p, &t) in predicted.iter().zip(targets) {
        confusion[t as usize][p as usize] += 1;
    }
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let per_class = (0..classes)
        .map(|c| {
            let tp = confusion[c][c];
            let predicted_as: u64 = confusion.iter().map(|row| row[c]).sum();
            let support: u64 = confusion[c].iter().sum();
            let (precision, recall) = (ratio(tp, predicted_as), ratio(tp, support));
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            ClassScores {
                precision,
                recall,
                f1,
                support,
            }
        })
        .collect();
    let right: u64 = (0..classes).map(|c| confusion[c][c]).sum();
    ClassificationScores {
        accuracy: ratio(right, targets.len() as u64),
        classes: per_class,
        confusion,
    }
}

/// The class indices in `targets`, when they are classes: class indices as given, or a single
/// 0/1 column (binary cross-entropy's targets).
pub fn target_classes(targets: &TargetsView<'_>) -> Option<Vec<u32>> {
    match targets {
        TargetsView::Classes(c) => Some(c.to_vec()),
        TargetsView::Dense(d) if d.ncols() == 1 => d
            .column(0)
            .iter()
            .map(|&v| (v == 0.0 || v == 1.0).then_some(v as u32))
            .collect(),
        TargetsView::Dense(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::Loss;
    use ndarray::array;

    #[test]
    fn regression_scores_match_scikit_learn() {
        // sklearn.metrics: r2_score([3, -0.5, 2, 7], [2.5, 0.0, 2, 8]) = 0.9486081370449679,
        // mean_absolute_error = 0.5, root_mean_squared_error = 0.6123724356957945.
        let y = array![[3.0f32], [-0.5], [2.0], [7.0]];
        let p = array![[2.5f32], [0.0], [2.0], [8.0]];
        let s = regression(p.view(), y.view());
        assert!((s.r2 - 0.948_608_137_044_967_9).abs() < 1e-9);
        assert!((s.mae - 0.5).abs() < 1e-12);
        assert!((s.rmse - 0.612_372_435_695_794_5).abs() < 1e-12);
    }

    #[test]
    fn classification_scores_match_scikit_learn() {
        // sklearn.metrics.classification_report([0, 1, 2, 2, 2], [0, 0, 2, 2, 1]):
        // precision 0.5, 0, 1; recall 1, 0, 0.667; f1 0.667, 0, 0.8; accuracy 0.6.
        let s = classification(&[0, 0, 2, 2, 1], &[0, 1, 2, 2, 2], 3);
        assert!((s.accuracy - 0.6).abs() < 1e-12);
        let precision: Vec<f64> = s.classes.iter().map(|c| c.precision).collect();
        let recall: Vec<f64> = s.classes.iter().map(|c| c.recall).collect();
        let f1: Vec<f64> = s.classes.iter().map(|c| c.f1).collect();
        assert_eq!(precision, [0.5, 0.0, 1.0]);
        assert!((recall[2] - 2.0 / 3.0).abs() < 1e-12 && recall[..2] == [1.0, 0.0]);
        assert!((f1[0] - 2.0 / 3.0).abs() < 1e-12 && f1[1] == 0.0 && (f1[2] - 0.8).abs() < 1e-12);
        assert_eq!(
            s.confusion,
            vec![vec![1, 0, 0], vec![1, 0, 0], vec![0, 1, 2]]
        );
        // macro avg: precision 0.5, recall 0.5556, f1 0.4889.
        let m = s.macro_average();
        assert!((m.precision - 0.5).abs() < 1e-12 && (m.recall - 5.0 / 9.0).abs() < 1e-12);
        assert!((m.f1 - (2.0 / 3.0 + 0.8) / 3.0).abs() < 1e-12 && m.support == 5);
        // A class that occurs nowhere is left out, as scikit-learn leaves it out.
        let m = classification(&[0, 1], &[0, 1], 3).macro_average();
        assert_eq!((m.precision, m.recall, m.f1), (1.0, 1.0, 1.0));
    }

    #[test]
    fn one_logit_is_thresholded_at_zero() {
        let z = array![[-0.3f32], [0.2], [0.0], [5.0]];
        assert_eq!(
            Loss::BceWithLogits.classes(z.view()),
            Some(vec![0, 1, 0, 1])
        );
        let z = array![[0.1f32, 0.9, 0.9], [2.0, 1.0, 0.0]];
        assert_eq!(Loss::CrossEntropy.classes(z.view()), Some(vec![1, 0]));
    }
}
