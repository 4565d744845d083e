//! The CPU reference engine: the same math as the GPU kernels, written plainly with ndarray.

mod batch_norm;
mod dense;
mod dropout;
mod elementwise;
mod engine;
mod layer;
mod layer_norm;
mod loss;
mod matmul;
mod network;
mod optim;

pub use engine::CpuEngine;
#[cfg(test)]
pub(crate) use layer_norm::{backward as layer_norm_backward, forward as layer_norm_forward};
pub use loss::{correct_rows, loss_and_gradient, loss_and_group_gradient};
pub use matmul::product;
pub use network::{
    Activations, backward, backward_each, forward, forward_training, update_running_statistics,
};
#[cfg(test)]
pub(crate) use optim::update;
