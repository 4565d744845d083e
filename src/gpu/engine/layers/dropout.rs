//! Dropout `i` of a pack ([`Dropout`]): in a training step `z_i = a_i = a_{i−1} ⊙ m` and
//! `δ_{i−1} = (δ_i ⊙ m) ⊙ act'_{i−1}(z_{i−1})`, the mask `m` drawn from the step's key in both
//! passes; in an evaluation `z_i = a_i = a_{i−1}`.

use crate::error::Result;
use crate::gpu::engine::recorder::{LayerBackward, Recorder, Shape};
use crate::gpu::ops::dispatch::Dispatch;
use crate::gpu::ops::dropout::{DropoutPass, DropoutShape};
use crate::model::{Activation, Dropout};

/// One dropout of a pack.
pub(crate) struct DropoutLayer {
    shape: DropoutShape,
    /// The activation of the layer before, whose derivative its backward pass applies.
    previous: Activation,
}

impl DropoutLayer {
    /// Dropout `dropout` after hidden layer `block` (whose masks are keyed by it), after a layer
    /// whose activation is `previous`, for batches of `max_batch` rows.
    pub fn new(dropout: Dropout, block: usize, previous: Activation, max_batch: usize) -> Self {
        Self {
            shape: DropoutShape {
                cols: dropout.width as u32,
                stride_rows: (max_batch * dropout.width) as u32,
                layer: block as u32,
                p: dropout.p,
                scale: dropout.scale(),
            },
            previous,
        }
    }

    /// Shape uniforms its dispatches take: its forward passes' and its backward pass's.
    pub fn uniform_slots(&self) -> usize {
        2
    }

    /// Layer `i`'s forward pass in a training step (masked) and in an evaluation (passed
    /// through).
    pub fn record_forward(
        &self,
        rec: &mut Recorder<'_>,
        i: usize,
    ) -> Result<(Vec<Dispatch>, Vec<Dispatch>)> {
        let buffers = rec.buffers;
        let own = &buffers.layers[i];
        let dims = rec.shape(Shape::Dropout(self.shape));
        let pass = |pass| {
            rec.kernels.dropout.dispatch(
                pass,
                self.shape.cols,
                [
                    buffers.layer_input(i).as_entire_binding(),
                    buffers.dummy_read.as_entire_binding(),
                    buffers.indices.as_entire_binding(),
                    own.pre.as_entire_binding(),
                    own.post.as_entire_binding(),
                    dims.clone(),
                    buffers.mask_key.as_entire_binding(),
                ],
            )
        };
        Ok((
            vec![pass(DropoutPass::Training)],
            vec![pass(DropoutPass::Evaluation)],
        ))
    }

    /// Layer `i`'s backward pass: `δ_{i−1}`; no tensor of its own.
    pub fn record_backward(&self, rec: &mut Recorder<'_>, i: usize) -> Result<LayerBackward> {
        let buffers = rec.buffers;
        let (own, before) = (&buffers.layers[i], &buffers.layers[i - 1]);
        let dims = rec.shape(Shape::Dropout(self.shape));
        let backward = rec.kernels.dropout.dispatch(
            DropoutPass::Backward(self.previous),
            self.shape.cols,
            [
                own.delta.as_entire_binding(),
                before.pre.as_entire_binding(),
                buffers.indices.as_entire_binding(),
                before.delta.as_entire_binding(),
                buffers.dummy_write.as_entire_binding(),
                dims,
                buffers.mask_key.as_entire_binding(),
            ],
        );
        Ok(LayerBackward {
            write: vec![backward.clone()],
            add: vec![backward],
        })
    }
}
