//! Dropout on the CPU ([`crate::model::Dropout`] has the equations): in training each unit is
//! multiplied by its mask's `1/(1 − p)` or 0, kept for the backward pass; in evaluation the
//! input passes through.

use ndarray::{Array2, ArrayView2};

use super::layer::{LayerGradients, LayerOutputs, Saved};
use crate::model::{Dropout, MaskKey};

/// The layer's output for the rows of `input`: masked when `key` says the pass trains (block
/// `layer`'s masks), else the input itself.
pub fn forward(
    dropout: &Dropout,
    layer: u32,
    input: ArrayView2<'_, f32>,
    key: Option<&MaskKey<'_>>,
) -> LayerOutputs {
    let Some(key) = key else {
        let out = input.to_owned();
        return LayerOutputs {
            pre: out.clone(),
            post: out,
            saved: None,
        };
    };
    let mut multipliers = Array2::zeros(input.dim());
    for (r, mut row) in multipliers.rows_mut().into_iter().enumerate() {
        let row = row
            .as_slice_mut()
            .expect("a new array's rows are contiguous");
        dropout.fill_row(key.seed, key.step, layer, key.row(r), row);
    }
    let out = &input * &multipliers;
    LayerOutputs {
        pre: out.clone(),
        post: out,
        saved: Some(Saved::Multipliers(multipliers)),
    }
}

/// `∂L/∂x = δ ⊙ m`, `m` the multipliers of the forward pass; no tensor of its own.
pub fn backward(delta: ArrayView2<'_, f32>, multipliers: &Array2<f32>) -> LayerGradients {
    (Vec::new(), Some(&delta * multipliers))
}
