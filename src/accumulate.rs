//! Gradient accumulation: several consecutive mini-batches that together make one optimizer
//! step, as if their rows had been one batch.
//!
//! For a group of batches `B_1, …, B_n` with `r_i` rows each and `R = Σ_i r_i` rows in all, the
//! group's gradient is that of the group's mean loss:
//!
//! ```text
//! g = ∂/∂θ [ (1/N(R)) · Σ_{rows of the group} ℓ_row ] = Σ_i N(r_i)/N(R) · ∇L_i = Σ_i r_i/R · ∇L_i
//! ```
//!
//! where `L_i` is batch `i`'s own mean loss and `N(r)` the loss's normalizer over `r` rows
//! ([`Loss::normalizer`](crate::loss::Loss::normalizer): `r` for cross-entropy, `r · outputs`
//! for the others, so `N(r_i)/N(R) = r_i/R` either way). It is PyTorch's accumulation loop:
//!
//! ```text
//! optimizer.zero_grad()
//! for x, y in batches:                                  # the group
//!     (criterion(model(x), y) * len(x) / R).backward()  # gradients add up
//! optimizer.step()
//! ```

use crate::error::{Error, Result};

/// Where one mini-batch sits in a group of consecutive mini-batches whose gradients make one
/// optimizer step (see the module documentation for the equation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// `R`: the rows of the whole group, at least the rows of this batch. Each row's output
    /// gradient is divided by `N(R)` instead of `N(rows)`; the batch's loss metrics keep its own
    /// mean, `(Σ_rows ℓ_row) / N(rows)`.
    pub group_rows: usize,
    /// This batch starts the group: its gradients overwrite the gradient buffers,
    /// `g ← r_1/R · ∇L_1`. Otherwise they are added to them, `g ← g + r_i/R · ∇L_i`.
    pub first: bool,
    /// This batch ends the group: the optimizer update follows (clipping by global norm when it
    /// is on, then the update `θ ← update(θ, g)`), and the step count rises by one.
    pub last: bool,
}

impl Part {
    /// A group of one batch of `rows` rows: an ordinary training step, `g = ∇L`, then the
    /// update.
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

    /// Checks that a batch of `rows` rows can be part of this group: `group_rows ≥ rows`.
    pub fn check(&self, rows: usize) -> Result<()> {
        if self.group_rows < rows {
            return Err(Error::Usage(format!(
                "a batch of {rows} rows cannot be part of a group of {} rows: group_rows counts \
                 the rows of every batch of the group",
                self.group_rows
            )));
        }
        Ok(())
    }
}
