//! What a pack of models at a batch size needs on the device, estimated before anything is
//! allocated, so that a model too large for the adapter is refused with the reason rather than
//! failing half-built.

use super::buffers::FlatLayout;
use super::units::mib;
use crate::engine::PackSetup;
use crate::error::{Error, Result};

/// Bytes a GPU engine needs, by what they hold. With `K` models, batch `B`, `P` parameters and
/// `R` running statistics per model (each laid out with alignment padding) and `S` optimizer
/// state slots:
///
/// ```text
/// parameters = 4·K·(P + R)    gradients = 4·K·P    optimizer state = 4·S·K·P
/// activations = 4·K·B·(Σ_layers v + 2)           (v = Layer::values_per_row: pre-activation,
///                                                 activation, output gradient, a layer norm's
///                                                 δ ⊙ x̂; per-row loss and accuracy)
/// batch       = 4·B·(inputs + outputs + 2)        (features, targets, class targets, indices)
/// resident    = 4·rows·(inputs + outputs + 1)     (a dataset kept on the device, if any)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Every model's parameters, in one flat buffer, and its running statistics in another.
    pub parameters: u64,
    /// Their gradients.
    pub gradients: u64,
    /// The optimizer's state slots.
    pub optimizer_state: u64,
    /// Each layer's pre-activations, activations and output gradients, and per-row metrics.
    pub activations: u64,
    /// The batch's features, targets and row indices, and the small uniforms and metrics.
    pub batch: u64,
    /// A resident dataset.
    pub resident: u64,
}

/// Uniforms, metrics, coefficients: a few KiB at most; counted in `batch`.
const SMALL_BUFFERS: u64 = 16 * 1024;

impl MemoryEstimate {
    /// The estimate for `setup` at batches of up to `max_batch` rows, with parameters aligned to
    /// `align_bytes` as the engine lays them out.
    pub fn for_pack(setup: &PackSetup, max_batch: usize, align_bytes: u64) -> Self {
        let model = &setup.model;
        let layout = FlatLayout::new(model, align_bytes);
        let statistics = FlatLayout::buffers(model, align_bytes);
        let models = setup.members.len() as u64;
        let flat = 4 * models * layout.total;
        // A state buffer for every slot any member uses (a sweep over momentum 0 and 0.9 keeps
        // SGD's momentum buffer for all of them).
        let slots = setup
            .members
            .iter()
            .flat_map(|m| m.optimizer.state_slots())
            .map(|slot| slot.index)
            .collect::<std::collections::BTreeSet<_>>()
            .len() as u64;
        let batch = max_batch as u64;
        let per_row: u64 = model.layers().iter().map(|l| l.values_per_row()).sum();
        let (inputs, outputs) = (model.inputs() as u64, model.outputs() as u64);
        Self {
            parameters: flat + 4 * models * statistics.total,
            gradients: flat,
            optimizer_state: slots * flat,
            activations: 4 * models * batch * (per_row + 2),
            batch: 4 * batch * (inputs + outputs + 2) + SMALL_BUFFERS,
            resident: 0,
        }
    }

    /// The same with a dataset of `rows` rows resident on the device.
    pub fn with_resident(self, rows: usize, inputs: usize, outputs: usize) -> Self {
        Self {
            resident: 4 * rows as u64 * (inputs as u64 + outputs as u64 + 1),
            ..self
        }
    }

    /// Bytes in all.
    pub fn total(&self) -> u64 {
        self.parameters
            + self.gradients
            + self.optimizer_state
            + self.activations
            + self.batch
            + self.resident
    }

    /// Refuses an estimate over `budget` bytes of device memory, naming what takes the most.
    pub fn check(&self, budget: Option<u64>, hint: &'static str) -> Result<()> {
        match budget {
            Some(budget) if self.total() > budget => Err(Error::DeviceMemory {
                needed: self.total(),
                budget,
                breakdown: self.breakdown(),
                hint,
            }),
            _ => Ok(()),
        }
    }

    /// `parameters 1.0 MiB, gradients 1.0 MiB, ...`, largest first.
    pub fn breakdown(&self) -> String {
        let mut parts = [
            ("parameters", self.parameters),
            ("gradients", self.gradients),
            ("optimizer state", self.optimizer_state),
            ("activations", self.activations),
            ("batch", self.batch),
            ("resident data", self.resident),
        ];
        parts.sort_by_key(|&(_, bytes)| std::cmp::Reverse(bytes));
        parts
            .iter()
            .filter(|&&(_, bytes)| bytes > 0)
            .map(|(name, bytes)| format!("{name} {}", mib(*bytes)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
