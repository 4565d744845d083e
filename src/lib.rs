//! downhill trains linear models and multilayer perceptrons by mini-batch gradient descent
//! on any GPU that wgpu reaches, with a CPU reference engine that checks every GPU result.
//!
//! ```no_run
//! use downhill::{Activation, Batch, CpuEngine, Engine, GpuContext, GpuEngine, Loss, ModelSpec,
//!     Optimizer, Parameters, Setup, TargetsView, optim::Adam};
//! use ndarray::array;
//!
//! # fn main() -> downhill::Result<()> {
//! let model = ModelSpec::from_widths(&[2, 8, 1], Activation::Tanh, Activation::Identity)?;
//! let setup = Setup { model, loss: Loss::Mse, optimizer: Optimizer::Adam(Adam::default()) };
//! let init = Parameters::init(&setup.model, 0);
//! let x = array![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
//! let y = array![[0.0f32], [1.0], [1.0], [0.0]];
//! let batch = Batch::new(x.view(), TargetsView::Dense(y.view()));
//!
//! let gpu = GpuContext::new(&Default::default())?;
//! let mut engine = GpuEngine::new(&gpu, setup.clone(), &init, 4)?;
//! let mut reference = CpuEngine::new(setup, &init)?;
//! for _ in 0..100 {
//!     engine.step(&batch)?;
//!     reference.step(&batch)?;
//! }
//! println!("gpu loss {} cpu loss {}", engine.last_loss()?, reference.last_loss()?);
//! # Ok(()) }
//! ```

pub mod accumulate;
pub mod activation;
pub mod checkpoint;
pub mod compare;
pub mod cpu;
pub mod data;
pub mod distributed;
pub mod engine;
pub mod error;
pub mod fsio;
pub mod gpu;
pub mod gradient_buckets;
pub mod host_memory;
pub mod loss;
pub mod model;
pub mod optim;
pub mod philox;
pub mod plot;
pub mod prepare;
pub mod rescue;
pub mod scores;
mod simd;
pub mod tensorboard;
pub mod tools;
pub mod train;
pub mod units;

pub use accumulate::Part;
pub use compare::{Tolerance, Worst, worst_difference};
pub use cpu::CpuEngine;
pub use engine::{Engine, Member, PackSetup, Setup};
pub use error::{Error, Result};
pub use gpu::{AdapterRequest, GpuContext, GpuEngine};
pub use loss::{Batch, Loss, Targets, TargetsView};
pub use model::{
    Activation, Dense, Dropout, Layer, LayerNorm, ModelSpec, NamedTensor, Norm, Parameters,
};
pub use optim::Optimizer;
pub use prepare::{PreparedRun, RunRequest};
/// The wgpu version downhill is built on, for [`AdapterRequest`] fields and adapter details.
pub use wgpu;

/// The README's code examples, compiled as doctests so they cannot drift from the library.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
