//! Models: a sequence of layers whose widths chain, the tensors they own (PyTorch names,
//! shapes, initialisation) and their values.
//!
//! A dense model is a sequence of layers `a_i = act_i(a_{i-1} · W_iᵀ + b_i)` with `a_{-1} = x`,
//! its parameters laid out as PyTorch's `nn.Linear`: `layers.{i}.weight` of shape `[out, in]`
//! and `layers.{i}.bias` of shape `[out]`, f32, row-major. Each kind of layer is described in
//! its own file ([`dense`], [`layer_norm`], [`batch_norm`], [`dropout`]) and listed in [`layer::Layer`].

pub mod batch_norm;
pub mod dense;
pub mod dropout;
pub mod layer;
pub mod layer_norm;
pub mod parameters;
pub mod spec;
pub mod tensor;

pub use self::batch_norm::BatchNorm;
pub use self::dense::{Dense, bias_name, weight_name};
pub use self::dropout::{Dropout, MaskKey};
pub use self::layer::Layer;
pub use self::layer_norm::LayerNorm;
pub use self::parameters::Parameters;
pub use self::spec::{ModelSpec, Norm};
pub use self::tensor::{Init, NamedTensor, TensorSpec};
pub use crate::activation::{Activation, sigmoid};
