//! Which loss, and its dispatch to the loss's own file: the one place that lists them.

use std::sync::OnceLock;

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut1};

use super::row::RowTarget;
use super::targets::TargetsView;
use super::{bce_logits, cross_entropy, mse};
use crate::error::{Error, Result};

/// A training loss, averaged over the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Mean squared error over batch and outputs.
    Mse,
    /// Softmax cross-entropy over the output logits, from class indices or soft targets.
    CrossEntropy,
    /// Binary cross-entropy on logits, elementwise, averaged over batch and outputs.
    BceWithLogits,
}

/// Every loss, in the order of their `LOSS` override values.
const ALL: [Loss; 3] = [Loss::Mse, Loss::CrossEntropy, Loss::BceWithLogits];

impl Loss {
    /// Every loss.
    pub fn all() -> [Loss; 3] {
        ALL
    }

    /// The name used on the command line and in checkpoints.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Mse => mse::NAME,
            Loss::CrossEntropy => cross_entropy::NAME,
            Loss::BceWithLogits => bce_logits::NAME,
        }
    }

    /// The divisor `N` of the summed loss: `B·C` for `Mse` and `BceWithLogits`, `B` for
    /// `CrossEntropy`.
    pub fn normalizer(self, rows: usize, outputs: usize) -> f32 {
        match self {
            Loss::Mse => mse::normalizer(rows, outputs),
            Loss::CrossEntropy => cross_entropy::normalizer(rows, outputs),
            Loss::BceWithLogits => bce_logits::normalizer(rows, outputs),
        }
    }

    /// One row's summed loss `ℓ_row` for outputs `z`, writing `∂ℓ_row/∂z / grad_norm` into
    /// `grad` (the gradient of the mean when `grad_norm` is the normaliser `N`).
    pub fn row(
        self,
        z: ArrayView1<'_, f32>,
        y: RowTarget<'_>,
        grad: ArrayViewMut1<'_, f32>,
        grad_norm: f32,
    ) -> f32 {
        match self {
            Loss::Mse => mse::row(z, y, grad, grad_norm),
            Loss::CrossEntropy => cross_entropy::row(z, y, grad, grad_norm),
            Loss::BceWithLogits => bce_logits::row(z, y, grad, grad_norm),
        }
    }

    /// Whether a row with outputs `z` is classified right (never for a regression loss; see
    /// [`crate::engine::Metrics::accuracy`]).
    pub fn correct(self, z: ArrayView1<'_, f32>, y: RowTarget<'_>) -> bool {
        match self {
            Loss::Mse => mse::correct(z, y),
            Loss::CrossEntropy => cross_entropy::correct(z, y),
            Loss::BceWithLogits => bce_logits::correct(z, y),
        }
    }

    /// Whether it classifies: rows are right or wrong (accuracy), and outputs give
    /// probabilities (and classes, where each row has one: [`Loss::classes`]). `false` for a
    /// regression loss.
    pub fn classifies(self) -> bool {
        match self {
            Loss::Mse => mse::CLASSIFIES,
            Loss::CrossEntropy => cross_entropy::CLASSIFIES,
            Loss::BceWithLogits => bce_logits::CLASSIFIES,
        }
    }

    /// The class each row of `outputs` predicts, when the loss predicts one class per row:
    /// the first largest output for cross-entropy, the logit's sign for bce-logits with one
    /// output; `None` for regression and for several independent labels.
    pub fn classes(self, outputs: ArrayView2<'_, f32>) -> Option<Vec<u32>> {
        match self {
            Loss::Mse => mse::classes(outputs),
            Loss::CrossEntropy => cross_entropy::classes(outputs),
            Loss::BceWithLogits => bce_logits::classes(outputs),
        }
    }

    /// The probabilities the logits `outputs` stand for: the softmax of each row for
    /// cross-entropy, each output's sigmoid for bce-logits; `None` for regression.
    pub fn probabilities(self, outputs: Array2<f32>) -> Option<Array2<f32>> {
        match self {
            Loss::Mse => mse::probabilities(outputs),
            Loss::CrossEntropy => cross_entropy::probabilities(outputs),
            Loss::BceWithLogits => bce_logits::probabilities(outputs),
        }
    }

    /// Whether its targets may be class indices (one per row) instead of rows of values.
    pub fn takes_class_indices(self) -> bool {
        match self {
            Loss::Mse => mse::CLASS_INDICES,
            Loss::CrossEntropy => cross_entropy::CLASS_INDICES,
            Loss::BceWithLogits => bce_logits::CLASS_INDICES,
        }
    }

    /// Its WGSL and other names.
    fn parts(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Loss::Mse => (mse::WGSL, mse::ALIASES),
            Loss::CrossEntropy => (cross_entropy::WGSL, cross_entropy::ALIASES),
            Loss::BceWithLogits => (bce_logits::WGSL, bce_logits::ALIASES),
        }
    }

    /// The `LOSS` override value that specialises [`wgsl`] to this loss.
    pub(crate) fn kernel_index(self) -> u32 {
        ALL.iter()
            .position(|&l| l == self)
            .expect("every loss is listed") as u32
    }

    /// Checks that `targets` suit this loss and a model with `outputs` outputs over `rows` rows.
    pub fn check_targets(
        self,
        targets: &TargetsView<'_>,
        rows: usize,
        outputs: usize,
    ) -> Result<()> {
        match targets {
            TargetsView::Classes(classes) => {
                if !self.takes_class_indices() {
                    return Err(Error::Targets(format!(
                        "{} needs float targets of width {outputs}, not class indices",
                        self.name()
                    )));
                }
                if classes.len() != rows {
                    return Err(Error::Targets(format!(
                        "{} class indices for {rows} feature rows",
                        classes.len()
                    )));
                }
                if let Some((row, &class)) = classes
                    .iter()
                    .enumerate()
                    .find(|&(_, &c)| c as usize >= outputs)
                {
                    return Err(Error::Targets(format!(
                        "class index {class} at row {row} is out of range for {outputs} outputs \
                         (valid: 0..={})",
                        outputs - 1
                    )));
                }
            }
            TargetsView::Dense(values) => {
                if values.dim() != (rows, outputs) {
                    return Err(Error::Targets(format!(
                        "targets have shape {:?} but the batch needs [{rows}, {outputs}] \
                         (one row per sample, one column per output)",
                        values.shape()
                    )));
                }
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for Loss {
    type Err = Error;

    /// Parses `mse`, `cross-entropy` (`ce`) and `bce-logits` (`bce-with-logits`), underscores
    /// accepted for dashes.
    fn from_str(text: &str) -> Result<Self> {
        let wanted = text.trim().replace('_', "-");
        ALL.into_iter()
            .find(|l| l.name() == wanted || l.parts().1.contains(&wanted.as_str()))
            .ok_or_else(|| {
                let names: Vec<&str> = ALL.iter().map(|l| l.name()).collect();
                let (last, rest) = names.split_last().expect("there are losses");
                Error::InvalidModel(format!(
                    "unknown loss `{text}`; expected {} or {last}",
                    rest.join(", ")
                ))
            })
    }
}

/// The WGSL of every loss and `loss_row(b, base)` / `loss_correct(b, base)`, which call the one
/// the `LOSS` override picks: appended to the loss kernel.
pub(crate) fn wgsl() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let mut source = String::from("\noverride LOSS: u32 = 0u;\n");
        for loss in ALL {
            source.push('\n');
            source.push_str(loss.parts().0);
        }
        for (function, suffix, result, otherwise) in [
            ("loss_row", "row", "f32", "0.0"),
            ("loss_correct", "correct", "u32", "0u"),
        ] {
            source.push_str(&format!(
                "\nfn {function}(b: u32, base: u32) -> {result} {{\n    switch LOSS {{\n"
            ));
            for loss in ALL {
                source.push_str(&format!(
                    "        case {}u: {{ return {}_{suffix}(b, base); }}\n",
                    loss.kernel_index(),
                    loss.name().replace('-', "_")
                ));
            }
            source.push_str(&format!(
                "        default: {{ return {otherwise}; }}\n    }}\n}}\n"
            ));
        }
        source
    })
}
