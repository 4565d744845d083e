//! What one matrix product computes: its operands' layouts, its epilogue and activation, and
//! which of its memory accesses may move vec4s.

use crate::model::Activation;

/// What the matmul kernel does with each element of the product (see `common.wgsl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epilogue {
    /// `C = A·B`.
    Plain = 0,
    /// `PRE = A·Bᵀ + bias`, `C = act(PRE)`.
    BiasActivation = 1,
    /// `C = (A·B) ⊙ act'(AUX)`.
    ActivationGrad = 2,
    /// `C = C + A·B`: a middle block of a sum over K split across buffers.
    Accumulate = 3,
    /// `C = (C + A·B) ⊙ act'(AUX)`: the last block of such a sum, for the input gradient.
    AccumulateActivationGrad = 4,
}

/// The matmul kernel's operand layouts and epilogue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatmulVariant {
    /// A is stored `[K, M]`.
    pub transpose_a: bool,
    /// B is stored `[N, K]`.
    pub transpose_b: bool,
    /// What happens to each product element.
    pub epilogue: Epilogue,
    /// The activation the epilogue applies or differentiates.
    pub activation: Activation,
}

impl MatmulVariant {
    /// Whether the shuffle tiles may read op(A) and op(B) as vec4s: every vec4 they load starts
    /// at a multiple of four elements. That needs K % 4 = 0 for a row-major A or a transposed B,
    /// M % 4 = 0 for a transposed A, N % 4 = 0 for a row-major B, and every other step the
    /// loads take a multiple of 4 as well: `steps` holds A's and B's per-model strides, and A's
    /// row stride and offset where A is a block of a wider matrix. A size that is `None` varies
    /// between dispatches (the batch) and so fails any condition that names it.
    pub fn vec4_fits(
        &self,
        m: Option<usize>,
        n: Option<usize>,
        k: Option<usize>,
        steps: &[u32],
    ) -> bool {
        let a = if self.transpose_a { fits(m) } else { fits(k) };
        let b = if self.transpose_b { fits(k) } else { fits(n) };
        a && b && steps.iter().all(|s| s % 4 == 0)
    }

    /// Whether the shuffle tiles may store C (and the pre-activations) as vec4s: every four
    /// columns an invocation stores start at a multiple of four elements. That needs N % 4 = 0
    /// and C's row stride, first column and per-model stride (`steps`) multiples of 4 too. A
    /// size that is `None` varies between dispatches and fails.
    pub fn vec4_result_fits(&self, n: Option<usize>, steps: &[u32]) -> bool {
        fits(n) && steps.iter().all(|s| s % 4 == 0)
    }
}

/// Whether a size is known and a multiple of 4.
fn fits(size: Option<usize>) -> bool {
    size.is_some_and(|s| s % 4 == 0)
}

/// Which of a shuffle tile's memory accesses move vec4s (four elements each) rather than
/// scalars; the bits are the same either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Vec4Access {
    /// Loads of op(A) and op(B) ([`MatmulVariant::vec4_fits`]).
    pub operands: bool,
    /// Stores of C and the pre-activations ([`MatmulVariant::vec4_result_fits`]).
    pub result: bool,
}
