//! Inverted dropout as the model describes it: in training, each unit of each row is kept with
//! probability `1 − p` and scaled by `1/(1 − p)`, else zeroed (PyTorch's `nn.Dropout(p)`); in
//! evaluation and prediction it passes its input through.
//!
//! Its masks come from Philox4x32-10 ([`crate::philox`]) keyed by the run's seed and counted by
//! the unit, the row's index in the dataset, the optimizer step and the hidden layer:
//!
//! ```text
//! (w0, w1, w2, w3) = philox([⌊unit/4⌋, row, step mod 2³², layer], [seed mod 2³², ⌊seed/2³²⌋])
//! u = ⌊w_(unit mod 4) / 2⁸⌋ · 2⁻²⁴        kept ⇔ u ≥ p        a = kept ? x/(1 − p) : 0
//! ```
//!
//! so every engine, and every split of a batch's rows, draws the same mask. It owns no tensor.

use serde_json::{Value, json};

use super::tensor::TensorSpec;
use crate::philox::{philox4x32, unit_interval};

/// Dropout with probability `p` over `width` units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropout {
    /// Its input and output width.
    pub width: usize,
    /// The probability that a unit is zeroed, in `[0, 1]`.
    pub p: f32,
}

/// Where a training step's masks come from: the run's key (its seed), the optimizer step, and
/// each batch row's index in the dataset.
#[derive(Debug, Clone, Copy)]
pub struct MaskKey<'a> {
    /// The run's seed.
    pub seed: u64,
    /// The optimizer step being computed, from 0.
    pub step: u64,
    /// Each batch row's index in the dataset; `None`: its position in the batch.
    pub rows: Option<&'a [u32]>,
}

impl MaskKey<'_> {
    /// Batch row `r`'s index in the dataset.
    pub fn row(&self, r: usize) -> u32 {
        self.rows.map_or(r as u32, |rows| rows[r])
    }
}

impl Dropout {
    /// What a kept unit is multiplied by: `1/(1 − p)`, or 0 when `p` is 1 (nothing is kept).
    pub fn scale(&self) -> f32 {
        if self.p < 1.0 {
            1.0 / (1.0 - self.p)
        } else {
            0.0
        }
    }

    /// Whether unit `unit` of a row whose dataset index is `row` is kept at `step` in hidden
    /// layer `layer` under `seed` (the equations above).
    pub fn kept(&self, seed: u64, step: u64, layer: u32, row: u32, unit: u32) -> bool {
        let words = philox4x32(
            [unit / 4, row, step as u32, layer],
            [seed as u32, (seed >> 32) as u32],
        );
        unit_interval(words[(unit % 4) as usize]) >= self.p
    }

    /// Fills `multipliers` (one per unit of a row) with what a training pass multiplies row
    /// `row`'s units by, `1/(1 − p)` when kept and 0 when not: the same draws as
    /// [`Dropout::kept`], one Philox call for each four units.
    pub fn fill_row(&self, seed: u64, step: u64, layer: u32, row: u32, multipliers: &mut [f32]) {
        let (scale, key) = (self.scale(), [seed as u32, (seed >> 32) as u32]);
        for (group, chunk) in multipliers.chunks_mut(4).enumerate() {
            let words = philox4x32([group as u32, row, step as u32, layer], key);
            for (m, word) in chunk.iter_mut().zip(words) {
                *m = if unit_interval(word) >= self.p {
                    scale
                } else {
                    0.0
                };
            }
        }
    }

    /// It owns no tensor.
    pub fn tensors(&self) -> Vec<TensorSpec> {
        Vec::new()
    }

    /// Its entry in a checkpoint's `architecture` metadata: `{"dropout": p, "width"}`.
    pub fn describe(&self) -> Value {
        json!({
            // The f32's shortest decimal form, so that 0.1 reads as 0.1.
            "dropout": self.p.to_string().parse::<f64>().unwrap_or(f64::from(self.p)),
            "width": self.width,
        })
    }

    /// The layer an `architecture` entry describes; `None` when the entry is not a dropout with
    /// a width and a probability in `[0, 1]`.
    pub fn read(entry: &Value) -> Option<Self> {
        let p = entry.get("dropout").and_then(Value::as_f64)?;
        let width = entry.get("width").and_then(Value::as_u64)?;
        (0.0..=1.0).contains(&p).then_some(Self {
            width: width as usize,
            p: p as f32,
        })
    }
}
