//! The engine's matmul kernel on its own, for kernel tests and GFLOP/s benchmarks:
//! `C[M,N] = op(A)·op(B)` with the variant's layouts and epilogue, on buffers allocated once.

use ndarray::{Array2, ArrayView1, ArrayView2};

use super::context::GpuContext;
use super::ops::matmul::staged::{Staged, check_sizes};
use super::ops::matmul::{MatmulTile, MatmulVariant};
use crate::error::Result;

/// One matmul of fixed shape, ready to run repeatedly.
pub struct Gemm {
    staged: Staged,
}

impl Gemm {
    /// Prepares `C[m,n] = op(A)[m,k]·op(B)[k,n]` for `variant`, with the tile the engine uses
    /// for that shape on this context (its [`Tuning`](super::Tuning)), reading vec4s where the
    /// shape allows.
    pub fn new(
        ctx: &GpuContext,
        variant: MatmulVariant,
        m: usize,
        n: usize,
        k: usize,
    ) -> Result<Self> {
        check_sizes(m, n, k)?;
        let vec4 = variant.vec4_fits(Some(m), Some(n), Some(k), &[]);
        let tile = ctx.matmul_tile(variant, (m, n, k), vec4, 1)?;
        Self::build(ctx, variant, tile, vec4, m, n, k)
    }

    /// Prepares the same product computed in `tile`s, reading vec4s where the shape allows.
    pub fn with_tile(
        ctx: &GpuContext,
        variant: MatmulVariant,
        tile: MatmulTile,
        m: usize,
        n: usize,
        k: usize,
    ) -> Result<Self> {
        let vec4 = variant.vec4_fits(Some(m), Some(n), Some(k), &[]);
        Self::build(ctx, variant, tile, vec4, m, n, k)
    }

    /// Prepares the product in `tile`s, a shuffle tile reading vec4s only when `vec4` (scalars
    /// otherwise, as it must for shapes [`MatmulVariant::vec4_fits`] refuses), and storing C
    /// as vec4s wherever N allows.
    pub fn build(
        ctx: &GpuContext,
        variant: MatmulVariant,
        tile: MatmulTile,
        vec4: bool,
        m: usize,
        n: usize,
        k: usize,
    ) -> Result<Self> {
        let staged = Staged::new(
            ctx,
            &ctx.kernels().matmul,
            variant,
            tile,
            vec4,
            (m, n, k),
            1,
        )?;
        Ok(Self { staged })
    }

    /// The tile it computes in.
    pub fn tile(&self) -> MatmulTile {
        self.staged.tile()
    }

    /// Floating-point operations of one product: `2·M·N·K`.
    pub fn flops(&self) -> f64 {
        self.staged.flops()
    }

    /// Uploads the operands in their stored layouts (A is `[k, m]` when transposed, B is
    /// `[n, k]` when transposed) and `aux`: the bias `[n]` or the pre-activation `[m, n]` the
    /// epilogue reads.
    pub fn upload(
        &self,
        a: ArrayView2<'_, f32>,
        b: ArrayView2<'_, f32>,
        aux: Option<ArrayView1<'_, f32>>,
    ) -> Result<()> {
        self.staged.upload(a, b, aux)
    }

    /// Records `repeats` back-to-back products in one submit and waits for them to finish.
    pub fn run(&self, repeats: usize) -> Result<()> {
        self.staged.run(repeats)
    }

    /// `C` after the last run, `[m, n]`.
    pub fn output(&self) -> Result<Array2<f32>> {
        self.staged.output()
    }

    /// The pre-activation `A·Bᵀ + bias` the forward epilogue stored, `[m, n]`.
    pub fn pre_activation(&self) -> Result<Array2<f32>> {
        self.staged.pre_activation()
    }
}
