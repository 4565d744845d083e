//! Gradients handed over in buckets while backward is still running, so that their reduction
//! across devices overlaps the rest of backward (PyTorch DDP's and Horovod's scheme).
//!
//! Backward produces the gradients last layer first. The layers are grouped, from the last one
//! down, into buckets of at most a size in bytes, whole layers each (a layer larger than that
//! is a bucket of its own), the first bucket at most [`FIRST_BUCKET_BYTES`] so that the first
//! reduction starts early: DDP's `bucket_cap_mb` and `first_bucket_bytes_cap`. As soon as backward has finished a bucket's lowest layer, its
//! gradients are final on this device and an engine hands them to a [`GradientSink`]
//! ([`Engine::accumulate_into`](crate::engine::Engine::accumulate_into)).
//!
//! A bucket's values are its layers' trained tensors, in the model's order
//! ([`ModelSpec::tensors`] without the buffers), one after another: every bucket is a
//! contiguous range of the model's *flat gradient*, the trained tensors' values concatenated,
//! which [`Engine::set_flat_gradients`](crate::engine::Engine::set_flat_gradients) takes back.

use std::ops::Range;

use crate::accumulate::Part;
use crate::error::{Error, Result};
use crate::model::{ModelSpec, Parameters};

/// The smallest first bucket, in bytes (DDP's `first_bucket_bytes_cap`, 1 MiB).
pub const FIRST_BUCKET_BYTES: usize = 1 << 20;

/// One bucket: consecutive layers and where their trained tensors sit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Its layers (indices into [`ModelSpec::layers`]).
    pub layers: Range<usize>,
    /// Its trained tensors, as indices into [`ModelSpec::tensors`], in the model's order.
    pub tensors: Vec<usize>,
    /// Where its values sit in the model's flat gradient.
    pub values: Range<usize>,
}

/// A model's layers grouped into buckets, in the order backward finishes them (the bucket
/// holding the last layer first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GradientBuckets {
    buckets: Vec<Bucket>,
    /// For each layer, the bucket whose lowest layer it is.
    closes: Vec<Option<usize>>,
    /// Elements of the flat gradient.
    total: usize,
}

impl GradientBuckets {
    /// `spec`'s layers grouped from the last one down as PyTorch DDP groups parameters: a
    /// bucket takes layers until the next would take it past `bytes` bytes of gradients (the
    /// first bucket, past `min(bytes, FIRST_BUCKET_BYTES)`); a layer larger than that is a
    /// bucket of its own, and a layer without trained tensors joins the bucket above it.
    pub fn new(spec: &ModelSpec, bytes: usize) -> Self {
        let per_layer = spec.layer_tensors();
        // Each layer's trained tensors: (index in the model's order, length).
        let mut index = 0;
        let trained: Vec<Vec<(usize, usize)>> = per_layer
            .iter()
            .map(|tensors| {
                tensors
                    .iter()
                    .filter_map(|t| {
                        index += 1;
                        t.trained.then_some((index - 1, t.len()))
                    })
                    .collect()
            })
            .collect();
        let mut offsets = vec![0usize; trained.len() + 1];
        for (i, layer) in trained.iter().enumerate() {
            offsets[i + 1] = offsets[i] + layer.iter().map(|&(_, len)| len).sum::<usize>();
        }
        // The bucket being filled holds the layers `layer + 1..top`.
        let mut ranges: Vec<Range<usize>> = Vec::new();
        let mut top = trained.len();
        for layer in (0..trained.len()).rev() {
            let cap = if ranges.is_empty() {
                bytes.min(FIRST_BUCKET_BYTES)
            } else {
                bytes
            };
            let held = (offsets[top] - offsets[layer + 1]) * 4;
            let adding = (offsets[layer + 1] - offsets[layer]) * 4;
            if adding > 0 && held > 0 && held + adding > cap {
                ranges.push(layer + 1..top);
                top = layer + 1;
            }
        }
        ranges.push(0..top);
        let mut closes = vec![None; trained.len()];
        let buckets = ranges
            .into_iter()
            .enumerate()
            .map(|(b, layers)| {
                closes[layers.start] = Some(b);
                Bucket {
                    tensors: trained[layers.clone()]
                        .iter()
                        .flatten()
                        .map(|&(t, _)| t)
                        .collect(),
                    values: offsets[layers.start]..offsets[layers.end],
                    layers,
                }
            })
            .collect();
        Self {
            buckets,
            closes,
            total: offsets[trained.len()],
        }
    }

    /// The buckets, in the order backward finishes them.
    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    /// The bucket whose gradients are final once backward has finished `layer`, if any.
    pub fn closed_by(&self, layer: usize) -> Option<usize> {
        self.closes.get(layer).copied().flatten()
    }

    /// Elements of the model's flat gradient (every trained tensor's values).
    pub fn total(&self) -> usize {
        self.total
    }
}

/// Takes the gradients an engine hands over bucket by bucket during backward.
pub trait GradientSink {
    /// How the model's layers are grouped.
    fn buckets(&self) -> &GradientBuckets;

    /// Bucket `bucket` of model `k` is final: `tensor(t)` is the accumulated gradient of the
    /// model's tensor `t` (an index into [`ModelSpec::tensors`]) for each of the bucket's
    /// tensors. Each model's buckets come in order; models may interleave.
    fn ready<'a>(
        &mut self,
        k: usize,
        bucket: usize,
        tensor: &dyn Fn(usize) -> &'a [f32],
    ) -> Result<()>;
}

/// Hands every bucket of model `k` to `sink` at once, `tensor(t)` being the gradient of the
/// model's tensor `t`: gradients that are final already (read back after backward, a frozen
/// model's, a device's zeros).
pub fn hand_over_model<'a>(
    sink: &mut dyn GradientSink,
    k: usize,
    tensor: &dyn Fn(usize) -> &'a [f32],
) -> Result<()> {
    for b in 0..sink.buckets().buckets().len() {
        sink.ready(k, b, tensor)?;
    }
    Ok(())
}

/// Checks that a mini-batch handed over bucket by bucket is not the last of its group: its
/// gradients are handed over to be changed before the update.
pub(crate) fn check_open(part: Part) -> Result<()> {
    if part.last {
        return Err(Error::Usage(
            "gradients handed over during backward are changed before the update: give a part \
             that is not the last of its group (Part { last: false, .. }), then apply_update"
                .into(),
        ));
    }
    Ok(())
}

/// Writes `flat`, a model's flat gradient (its trained tensors' values one after another),
/// into the tensors of `params` that `trained` marks (one flag per tensor, in the model's
/// order); fails when `flat` has another length.
pub fn fill_trained(trained: &[bool], flat: &[f32], params: &mut Parameters) -> Result<()> {
    let expected: usize = params
        .named_tensors()
        .iter()
        .zip(trained)
        .filter(|(_, trained)| **trained)
        .map(|(t, _)| t.values.len())
        .sum();
    if flat.len() != expected {
        return Err(Error::Shape {
            what: "flat gradient".into(),
            expected: format!("{expected} values"),
            got: format!("{} values", flat.len()),
        });
    }
    let mut at = 0;
    for ((_, values), _) in params.tensors_mut().zip(trained).filter(|(_, t)| **t) {
        values.copy_from_slice(&flat[at..at + values.len()]);
        at += values.len();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, ModelSpec, Norm};

    fn mlp(widths: &[usize]) -> ModelSpec {
        ModelSpec::from_widths(widths, Activation::Relu, Activation::Identity)
            .expect("a valid model")
    }

    #[test]
    fn buckets_cover_every_layer_from_the_last_one_down() {
        // 784-512-512-10: 401,920 + 262,656 + 5,130 weights and biases.
        let spec = mlp(&[784, 512, 512, 10]);
        let buckets = GradientBuckets::new(&spec, 25 << 20);
        // The first bucket stops short of 1 MiB (the last layer alone), the second takes the
        // rest, under 25 MiB.
        let layers: Vec<_> = buckets.buckets().iter().map(|b| b.layers.clone()).collect();
        assert_eq!(layers, [2..3, 0..2]);
        assert_eq!(buckets.buckets()[0].values, 664_576..669_706);
        assert_eq!(buckets.buckets()[1].values, 0..664_576);
        assert_eq!(buckets.buckets()[0].tensors, [4, 5]);
        assert_eq!(buckets.buckets()[1].tensors, [0, 1, 2, 3]);
        assert_eq!(buckets.total(), 669_706);
        assert_eq!(buckets.closed_by(2), Some(0));
        assert_eq!(buckets.closed_by(1), None);
        assert_eq!(buckets.closed_by(0), Some(1));
        // 2 MiB buckets: no bucket past its cap but the layer larger than it.
        let layers: Vec<_> = GradientBuckets::new(&spec, 2 << 20)
            .buckets()
            .iter()
            .map(|b| b.layers.clone())
            .collect();
        assert_eq!(layers, [2..3, 1..2, 0..1]);
    }

    #[test]
    fn one_byte_buckets_hold_one_layer_each_and_a_huge_cap_one_bucket() {
        let spec = mlp(&[4, 3, 2]);
        let small = GradientBuckets::new(&spec, 1);
        let layers: Vec<_> = small.buckets().iter().map(|b| b.layers.clone()).collect();
        assert_eq!(layers, [1..2, 0..1]);
        assert_eq!(small.total(), 4 * 3 + 3 + 3 * 2 + 2);
        let whole = GradientBuckets::new(&spec, usize::MAX);
        // The first bucket's cap is at most 1 MiB, which the model is far below.
        assert_eq!(whole.buckets().len(), 1);
        assert_eq!(whole.buckets()[0].layers, 0..2);
    }

    #[test]
    fn a_layer_without_tensors_joins_the_bucket_above_it() {
        let spec = ModelSpec::mlp(
            &[4, 3, 2],
            Activation::Relu,
            Activation::Identity,
            Norm::None,
            0.5,
        )
        .expect("a valid model");
        assert_eq!(spec.layers().len(), 3, "dense, dropout, dense");
        let buckets = GradientBuckets::new(&spec, 1);
        let layers: Vec<_> = buckets.buckets().iter().map(|b| b.layers.clone()).collect();
        assert_eq!(layers, [1..3, 0..1]);
        assert_eq!(buckets.closed_by(2), None);
        assert_eq!(buckets.closed_by(1), Some(0));
        assert_eq!(buckets.buckets()[1].values, 0..15);
    }
}
