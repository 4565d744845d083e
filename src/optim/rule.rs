//! What every optimizer config implements, and the types it hands the engines.

use super::hyperparameters::Hyperparameters;
use crate::error::Result;

/// Most state tensors any optimizer keeps per parameter.
pub const MAX_STATE_SLOTS: usize = 3;

/// Everything the engines and the command line need of one optimizer, implemented by its
/// config (`src/optim/X.rs`): [`Optimizer`](super::Optimizer) dispatches every call to it in one
/// place.
///
/// The CPU [`update`](Rule::update) and the WGSL `update` of [`wgsl`](Rule::wgsl) are the same
/// f32 arithmetic in the same order, element by element, on the same [`Coefficients`].
pub trait Rule: Sync {
    /// PyTorch's class name (`SGD`, `AdamW`, ...); in lower case, the command line's name for
    /// the optimizer.
    fn name(&self) -> &'static str;

    /// The learning rate.
    fn lr(&self) -> f64;

    /// The [`Hyperparameters`] it reads, by field name: exactly those [`Rule::set`] takes.
    fn options(&self) -> &'static [&'static str];

    /// Takes every hyperparameter `h` gives that it reads, keeping its own value for the rest.
    /// Does not validate.
    fn set(&mut self, h: &Hyperparameters);

    /// Checks every hyperparameter as PyTorch's constructor does (each with `require`,
    /// which also checks that it fits the engines' f32).
    fn validate(&self) -> Result<()>;

    /// The state tensors these options need (unused ones, such as `max_exp_avg_sq` without
    /// amsgrad, are not allocated).
    fn state_slots(&self) -> Vec<StateSlot>;

    /// The coefficients of update number `step` (1 for the first update): the step's scalars
    /// computed in f64, as PyTorch computes them in Python floats, rounded to f32 once, in the
    /// optimizer's `#[repr(C)]` struct laid out as its WGSL `Coefficients`.
    fn coefficients(&self, step: u64) -> Coefficients;

    /// Applies one update on the CPU to a piece of a tensor, element by element, exactly as the
    /// optimizer's equations: `c` is from [`Rule::coefficients`], every gradient is first
    /// multiplied by `clip` (the scale of clipping by global norm; 1 when off), and `state[k]`
    /// is the same piece of state slot `k` (empty when the optimizer does not use that slot).
    /// Written as loops over the slices side by side that the compiler vectorises.
    fn update(
        &self,
        c: &Coefficients,
        clip: f32,
        params: &mut [f32],
        grads: &[f32],
        state: [&mut [f32]; MAX_STATE_SLOTS],
    );

    /// The WGSL of its fused GPU update (`include_str!("X.wgsl")`, beside its config), which
    /// `src/gpu/ops/optimizer.wgsl` completes into a kernel.
    fn wgsl(&self) -> &'static str;
}

/// A per-parameter state tensor an optimizer keeps, at a fixed slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StateSlot {
    /// Slot index in `0..MAX_STATE_SLOTS`; fixed per optimizer so kernels can address it.
    pub index: usize,
    /// PyTorch's name for it in `optimizer.state[p]` (`exp_avg`, `momentum_buffer`, ...).
    pub name: &'static str,
    /// The value it starts at.
    pub initial: f32,
}

impl StateSlot {
    /// Slot `index`, named `name`, starting at 0.
    pub fn zero(index: usize, name: &'static str) -> StateSlot {
        StateSlot {
            index,
            name,
            initial: 0.0,
        }
    }
}

/// Most bytes an optimizer's coefficients take.
pub const MAX_COEFFICIENT_BYTES: usize = 48;

/// The scalars of one update step, already rounded to f32: an optimizer's own coefficients
/// struct, held as the bytes of the uniform its kernel reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coefficients {
    /// The struct's bytes, then zeros.
    bytes: [u8; MAX_COEFFICIENT_BYTES],
    /// The struct's size.
    len: usize,
}

impl Coefficients {
    /// Holds `typed`, an optimizer's `#[repr(C)]` coefficients struct of at most
    /// [`MAX_COEFFICIENT_BYTES`] (a larger one does not compile).
    pub fn new<T: bytemuck::Pod>(typed: T) -> Coefficients {
        const { assert!(size_of::<T>() <= MAX_COEFFICIENT_BYTES) };
        let mut bytes = [0; MAX_COEFFICIENT_BYTES];
        bytes[..size_of::<T>()].copy_from_slice(bytemuck::bytes_of(&typed));
        Coefficients {
            bytes,
            len: size_of::<T>(),
        }
    }

    /// The bytes of the uniform block the optimizer kernel reads: exactly the struct's.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The coefficients struct held; panics unless `T` has the size of the one held.
    pub fn get<T: bytemuck::Pod>(&self) -> T {
        bytemuck::pod_read_unaligned(self.as_bytes())
    }
}
