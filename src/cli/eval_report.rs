//! What `downhill eval` prints: the loss, and the scores scikit-learn users expect (R², MAE and
//! RMSE for regression; accuracy, per-class precision, recall and F1 and the confusion matrix
//! for classification), as a table or as JSON.

use downhill::engine::Metrics;
use downhill::scores::{self, ClassificationScores, RegressionScores};
use downhill::{Loss, TargetsView};
use ndarray::ArrayView2;
use serde_json::json;

use super::args::CheckFormat;
use crate::cli::output::outln;

/// The scores of `outputs` against `targets` under `loss`.
pub enum Scores {
    /// Classes: one-of-K cross-entropy, or one logit with 0/1 targets.
    Classification(ClassificationScores),
    /// Values: mse, or multi-label binary cross-entropy.
    Regression(RegressionScores),
}

impl Scores {
    /// Scores `outputs` (`[rows, outputs]`) against `targets`: `None` when the targets are
    /// neither classes the outputs predict nor values they estimate.
    pub fn new(
        outputs: ArrayView2<'_, f32>,
        targets: &TargetsView<'_>,
        loss: Loss,
    ) -> Option<Self> {
        let classes = loss.classes(outputs).zip(scores::target_classes(targets));
        match (classes, targets, loss) {
            (Some((predicted, truth)), _, _) => Some(Self::Classification(scores::classification(
                &predicted,
                &truth,
                outputs.ncols().max(2),
            ))),
            (None, TargetsView::Dense(values), loss) if !loss.classifies() => {
                Some(Self::Regression(scores::regression(outputs, *values)))
            }
            // Multi-label or soft targets of binary cross-entropy: the loss says it all.
            _ => None,
        }
    }
}

/// Prints `metrics` (loss, rows) and `scores` in `format`.
pub fn print(metrics: &Metrics, loss: Loss, scores: Option<&Scores>, format: CheckFormat) {
    match format {
        CheckFormat::Json => outln!("{}", to_json(metrics, loss, scores)),
        CheckFormat::Table => print_table(metrics, scores),
    }
}

fn print_table(metrics: &Metrics, scores: Option<&Scores>) {
    outln!("rows {}", metrics.rows);
    outln!("loss {:.6}", metrics.loss());
    match scores {
        None => {}
        Some(Scores::Regression(r)) => {
            outln!("r2 {:.6}", r.r2);
            outln!("mae {:.6}", r.mae);
            outln!("rmse {:.6}", r.rmse);
        }
        Some(Scores::Classification(c)) => {
            outln!("accuracy {:.2}%", 100.0 * c.accuracy);
            outln!();
            outln!("class  precision  recall      f1  support");
            for (k, s) in c.classes.iter().enumerate() {
                outln!(
                    "{k:>5}  {:>9.4}  {:>6.4}  {:>6.4}  {:>7}",
                    s.precision,
                    s.recall,
                    s.f1,
                    s.support
                );
            }
            let m = c.macro_average();
            outln!(
                "macro  {:>9.4}  {:>6.4}  {:>6.4}  {:>7}",
                m.precision,
                m.recall,
                m.f1,
                m.support
            );
            outln!();
            outln!("confusion matrix (rows: true class, columns: predicted class)");
            let width = c
                .confusion
                .iter()
                .flatten()
                .map(|v| v.to_string().len())
                .max()
                .unwrap_or(1)
                .max(c.confusion.len().to_string().len());
            let header: Vec<String> = (0..c.confusion.len())
                .map(|k| format!("{k:>width$}"))
                .collect();
            outln!("{:>5}  {}", "", header.join(" "));
            for (k, row) in c.confusion.iter().enumerate() {
                let cells: Vec<String> = row.iter().map(|v| format!("{v:>width$}")).collect();
                outln!("{k:>5}  {}", cells.join(" "));
            }
        }
    }
}

fn to_json(metrics: &Metrics, loss: Loss, scores: Option<&Scores>) -> serde_json::Value {
    let mut out = json!({ "rows": metrics.rows, "loss": metrics.loss(), "loss_name": loss.name() });
    match scores {
        None => {}
        Some(Scores::Regression(r)) => {
            out["r2"] = json!(r.r2);
            out["mae"] = json!(r.mae);
            out["rmse"] = json!(r.rmse);
        }
        Some(Scores::Classification(c)) => {
            out["accuracy"] = json!(c.accuracy);
            out["classes"] = c
                .classes
                .iter()
                .enumerate()
                .map(|(k, s)| {
                    json!({"class": k, "precision": s.precision, "recall": s.recall,
                           "f1": s.f1, "support": s.support})
                })
                .collect();
            let m = c.macro_average();
            out["macro"] = json!({"precision": m.precision, "recall": m.recall, "f1": m.f1,
                                  "support": m.support});
            out["confusion"] = json!(c.confusion);
        }
    }
    out
}
