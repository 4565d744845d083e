//! Gradient accumulation: several consecutive mini-batches that make one optimizer step.
//!
//! A group of mini-batches `B_1 … B_n` with `R = Σ_i |B_i|` rows steps with the gradient of the
//! group's mean loss,
//!
//! ```text
//! g = Σ_i (|B_i| / R) · ∇ L̄(B_i) = ∇ (Σ_i Σ_{r ∈ B_i} ℓ_r) / N(R)
//! ```
//!
//! where `L̄(B)` is a batch's mean loss and `N(R)` the loss's normaliser over `R` rows
//! ([`crate::loss::Loss::normalizer`]): PyTorch's `(loss * rows_i / rows_group).backward()` per
//! mini-batch, then `optimizer.step()` once for the group. Each mini-batch divides its rows'
//! output gradients by `N(R)` instead of `N(|B_i|)`, the first overwrites the gradients and the
//! others add to them, and the last applies the update.

/// Where one mini-batch sits in the group that makes its optimizer step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// The rows of the whole group, `R` above (at least the mini-batch's own rows).
    pub group_rows: usize,
    /// The mini-batch starts the group: its gradients replace the engine's.
    pub first: bool,
    /// The mini-batch ends the group: clipping and the optimizer update follow it.
    pub last: bool,
}

impl Part {
    /// A mini-batch of `rows` rows that is its own group: an ordinary training step.
    pub fn whole(rows: usize) -> Self {
        Self {
            group_rows: rows,
            first: true,
            last: true,
        }
    }

    /// Mini-batch `index` (from 0) of a group of `count` mini-batches with `group_rows` rows.
    pub fn of(index: usize, count: usize, group_rows: usize) -> Self {
        Self {
            group_rows,
            first: index == 0,
            last: index + 1 == count,
        }
    }

    /// Refuses a group smaller than its mini-batch of `rows` rows.
    pub fn check(&self, rows: usize) -> crate::Result<()> {
        if self.group_rows < rows {
            return Err(crate::Error::Usage(format!(
                "a mini-batch of {rows} rows cannot belong to a group of {} rows",
                self.group_rows
            )));
        }
        Ok(())
    }
}
