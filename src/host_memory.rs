//! The host's memory: what is available, and whether a model's arrays fit in it, checked before
//! they are allocated (an allocation that fails ends a process without a word).

use crate::error::{Error, Result};
use crate::model::ModelSpec;

/// Bytes of memory available to new allocations now (Linux's `MemAvailable`), or `None` where
/// that is not known.
pub fn available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// Bytes of one f32 copy of `model`'s parameters, `4·Σ_tensors Π shape`, saturating.
pub fn parameter_bytes(model: &ModelSpec) -> u64 {
    model
        .tensor_shapes()
        .iter()
        .map(|(_, shape)| shape.iter().fold(1u64, |n, &d| n.saturating_mul(d as u64)))
        .fold(0u64, u64::saturating_add)
        .saturating_mul(4)
}

/// Bytes of the per-row arrays of a batch of `rows` through `model` on the CPU engine:
/// `4·rows·Σ_layers values_per_row` (each layer's pre-activations, activations and output
/// gradients: [`crate::model::Layer::values_per_row`]).
pub fn activation_bytes(model: &ModelSpec, rows: usize) -> u64 {
    model
        .layers()
        .iter()
        .map(|l| l.values_per_row())
        .fold(0u64, u64::saturating_add)
        .saturating_mul(rows as u64)
        .saturating_mul(4)
}

/// Refuses `parts` (what each allocation is for, and its bytes) when together they exceed the
/// memory available, with the breakdown, largest first. Where the available memory is unknown,
/// only sizes no machine has (over 2⁶⁴ bytes, or over the address space) are refused.
pub fn check(parts: &[(&str, u64)]) -> Result<()> {
    let needed = parts.iter().map(|p| p.1).fold(0u64, u64::saturating_add);
    let available = available().unwrap_or(isize::MAX as u64);
    if needed <= available {
        return Ok(());
    }
    let mut parts = parts.to_vec();
    parts.sort_by_key(|&(_, bytes)| std::cmp::Reverse(bytes));
    let breakdown = parts
        .iter()
        .filter(|p| p.1 > 0)
        .map(|(name, bytes)| format!("{name} {}", crate::units::size(*bytes)))
        .collect::<Vec<_>>()
        .join(", ");
    Err(Error::HostMemory {
        needed,
        available,
        breakdown,
    })
}
