//! The kernels, one file per family beside its WGSL: each declares its uniform, its bindings
//! (once, from which its layout and every bind group are built), its pipelines and the
//! dispatches it records, and tests itself on the GPU against its CPU twin.
//!
//! - `matmul/`: `C = op(A)·op(B)` with an epilogue (forward, weight and input gradients), its
//!   tiles, their autotuning, and a product on scratch buffers;
//! - `loss.rs`: each row's loss and output gradient, and the mean;
//! - `reduce.rs`: column sums (bias gradients);
//! - `layer_norm.rs`: layer normalisation, forward and backward, a row per workgroup;
//! - `batch_norm.rs`: batch normalisation, forward (training or evaluation) and backward, a
//!   column per invocation;
//! - `dropout.rs`: inverted dropout, its masks drawn from Philox4x32-10 (`philox.wgsl`);
//! - `clip.rs`: clipping by global norm;
//! - `optimizer.rs`: the fused optimizer update (its skeleton `optimizer.wgsl`; each optimizer's
//!   WGSL beside it in `src/optim/`);
//! - `gather.rs`: a batch gathered from a dataset kept on the device;
//! - `binding.rs`, `shader.rs`, `dispatch.rs`: what they share.

pub(crate) mod batch_norm;
pub(crate) mod binding;
pub(crate) mod clip;
pub(crate) mod dispatch;
pub(crate) mod dropout;
pub(crate) mod gather;
pub(crate) mod layer_norm;
pub(crate) mod loss;
pub(crate) mod matmul;
pub(crate) mod optimizer;
pub(crate) mod reduce;
mod shader;

use batch_norm::BatchNormOp;
use clip::ClipOp;
use dropout::DropoutOp;
use gather::GatherOp;
use layer_norm::LayerNormOp;
use loss::LossOp;
use matmul::MatmulOp;
use optimizer::OptimizerOp;
use reduce::ReduceOp;

/// Every kernel family compiled for one device, shared by every engine, pack and product on a
/// context.
pub(crate) struct Kernels {
    pub matmul: MatmulOp,
    pub loss: LossOp,
    pub reduce: ReduceOp,
    pub layer_norm: LayerNormOp,
    pub batch_norm: BatchNormOp,
    pub dropout: DropoutOp,
    pub clip: ClipOp,
    pub optimizer: OptimizerOp,
    pub gather: GatherOp,
}

impl Kernels {
    /// Compiles the modules and layouts on `device` (the optimizer and gather kernels when first
    /// asked for).
    pub fn new(device: &wgpu::Device) -> Self {
        Self {
            matmul: MatmulOp::new(device),
            loss: LossOp::new(device),
            reduce: ReduceOp::new(device),
            layer_norm: LayerNormOp::new(device),
            batch_norm: BatchNormOp::new(device),
            dropout: DropoutOp::new(device),
            clip: ClipOp::new(device),
            optimizer: OptimizerOp::new(device),
            gather: GatherOp::new(device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::binding::{Binding, declared, read_write};
    use super::*;

    /// The bindings a module's sources declare, by binding number, each once.
    fn bindings_of(sources: &[&str]) -> Vec<(u32, Binding)> {
        let mut all: Vec<(u32, Binding)> = sources.iter().flat_map(|s| declared(s)).collect();
        let count = all.len();
        all.sort_by_key(|(i, _)| *i);
        all.dedup_by_key(|(i, _)| *i);
        assert_eq!(all.len(), count, "a binding number declared twice");
        all
    }

    /// Checks that `sources` declare exactly `rust`, binding `i` being `rust[i]`.
    fn check(op: &str, sources: &[&str], rust: &[Binding]) {
        let wgsl = bindings_of(sources);
        let expected: Vec<(u32, Binding)> = (0..).zip(rust.iter().copied()).collect();
        assert_eq!(
            wgsl, expected,
            "{op}: the WGSL's bindings and the Rust declaration differ"
        );
    }

    #[test]
    fn every_op_declares_the_bindings_its_wgsl_declares() {
        for sources in matmul::sources() {
            check("matmul", &sources, &matmul::BINDINGS);
        }
        check("loss", &loss::sources(), &loss::BINDINGS);
        check("reduce", &reduce::sources(), &reduce::BINDINGS);
        check("layer norm", &layer_norm::sources(), &layer_norm::BINDINGS);
        check("dropout", &dropout::sources(), &dropout::BINDINGS);
        check(
            "batch norm",
            &batch_norm::forward_sources(),
            &batch_norm::FORWARD_BINDINGS,
        );
        check(
            "batch norm backward",
            &batch_norm::backward_sources(),
            &batch_norm::BACKWARD_BINDINGS,
        );
        check("clip", &clip::sources(), &clip::BINDINGS);
        check("gather", &gather::sources(), &gather::BINDINGS);
        // Each optimizer declares the state slots it uses, named as its state: with every option
        // on, all of them.
        for optimizer in optimizer::every_kind() {
            let wgsl = bindings_of(&optimizer::sources(&optimizer));
            let slots = optimizer.state_slots();
            let expected: Vec<(u32, Binding)> = (0..)
                .zip(optimizer::BINDINGS)
                .filter_map(|(i, binding)| match optimizer::state_slot(i) {
                    None => Some((i, binding)),
                    Some(slot) => slots
                        .iter()
                        .find(|s| s.index == slot)
                        .map(|s| (i, read_write(s.name))),
                })
                .collect();
            assert_eq!(wgsl, expected, "{}", optimizer.name());
        }
    }
}
