//! The engine's matmul kernel on its own, for kernel tests and GFLOP/s benchmarks:
//! `C[M,N] = op(A)·op(B)` with the variant's layouts and epilogue, on buffers allocated once.

use ndarray::{Array2, ArrayView1, ArrayView2};

use super::buffers::{UniformBlock, bind_in_order};
use super::context::GpuContext;
use super::kernels::{Epilogue, MatmulTile, MatmulVariant, Vec4Access};
use crate::error::{Error, Result};

/// One matmul of fixed shape, ready to run repeatedly.
pub struct Gemm {
    ctx: GpuContext,
    variant: MatmulVariant,
    tile: MatmulTile,
    m: usize,
    n: usize,
    k: usize,
    /// Copies of the product run side by side (in z).
    models: usize,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    lhs: wgpu::Buffer,
    rhs: wgpu::Buffer,
    aux: wgpu::Buffer,
    result: wgpu::Buffer,
    pre: wgpu::Buffer,
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
        Self::build_for_models(ctx, variant, tile, vec4, (m, n, k), 1)
    }

    /// The same product for each of `models` side by side in one dispatch (the model index in
    /// z, each operand `models` times over), as a pack runs it; uploads and outputs are model
    /// 0's. The tuner times products this way.
    pub(crate) fn build_for_models(
        ctx: &GpuContext,
        variant: MatmulVariant,
        tile: MatmulTile,
        vec4: bool,
        (m, n, k): (usize, usize, usize),
        models: usize,
    ) -> Result<Self> {
        check_sizes(m, n, k)?;
        let strides = [(m * k) as u32, (k * n) as u32];
        if vec4 && !variant.vec4_fits(Some(m), Some(n), Some(k), &strides) {
            return Err(Error::Usage(format!(
                "a {m}x{n}x{k} product with these layouts cannot be read as vec4s"
            )));
        }
        if !ctx.runs(tile) {
            return Err(Error::Usage(format!(
                "the {} tile needs subgroups of at least 8 invocations, which {} lacks",
                tile.name(),
                ctx.describe()
            )));
        }
        ctx.scoped("preparing a matmul", || {
            let usage = wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
            let buffer = |name: &str, elements: usize| {
                ctx.storage_buffer(name, elements as u64 * 4, usage, "use smaller matrices")
            };
            let aux_len = match variant.epilogue {
                Epilogue::Plain | Epilogue::Accumulate => 1,
                Epilogue::BiasActivation => n,
                Epilogue::ActivationGrad | Epilogue::AccumulateActivationGrad => m * n,
            };
            let (lhs, rhs, aux) = (
                buffer("A", models * m * k)?,
                buffer("B", models * k * n)?,
                buffer("aux", models * aux_len)?,
            );
            let (result, pre) = (
                buffer("C", models * m * n)?,
                buffer("pre-activation", models * m * n)?,
            );
            let kernels = ctx.kernels();
            let mut dims = UniformBlock::new(ctx, "matmul shape", 1, 48, 16);
            let lda = if variant.transpose_a { m } else { k };
            let words = [m, n, k, lda, m * k, k * n, m * n, aux_len, n, 0, 0, 0].map(|w| w as u32);
            dims.set(0, bytemuck::cast_slice(&words));
            dims.upload(&ctx.queue);
            let bind_group = bind_in_order(
                &ctx.device,
                "matmul",
                &kernels.matmul_layout,
                [&lhs, &rhs, &aux, &result, &pre]
                    .into_iter()
                    .map(|b| b.as_entire_binding())
                    .chain([dims.binding(0, 48)]),
            );
            Ok(Self {
                ctx: ctx.clone(),
                variant,
                tile,
                m,
                n,
                k,
                models,
                pipeline: kernels.matmul(
                    variant,
                    tile,
                    Vec4Access {
                        operands: vec4,
                        result: variant.vec4_result_fits(Some(n), &[(m * n) as u32, n as u32]),
                    },
                ),
                bind_group,
                lhs,
                rhs,
                aux,
                result,
                pre,
            })
        })
    }

    /// The tile it computes in.
    pub fn tile(&self) -> MatmulTile {
        self.tile
    }

    /// Floating-point operations of one product: `2·M·N·K`.
    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }

    /// Uploads the operands in their stored layouts (A is `[k, m]` when transposed, B is `[n, k]`
    /// when transposed) and `aux`: the bias `[n]` or the pre-activation `[m, n]` the epilogue reads.
    pub fn upload(
        &self,
        a: ArrayView2<'_, f32>,
        b: ArrayView2<'_, f32>,
        aux: Option<ArrayView1<'_, f32>>,
    ) -> Result<()> {
        let (m, n, k) = (self.m, self.n, self.k);
        let a_shape = if self.variant.transpose_a {
            (k, m)
        } else {
            (m, k)
        };
        let b_shape = if self.variant.transpose_b {
            (n, k)
        } else {
            (k, n)
        };
        for (what, got, expected) in [("A", a.dim(), a_shape), ("B", b.dim(), b_shape)] {
            if got != expected {
                return Err(Error::Shape {
                    what: format!("matmul operand {what}"),
                    expected: format!("{expected:?}"),
                    got: format!("{got:?}"),
                });
            }
        }
        let write = |buffer: &wgpu::Buffer, values: &[f32]| {
            self.ctx
                .queue
                .write_buffer(buffer, 0, bytemuck::cast_slice(values));
        };
        write(
            &self.lhs,
            &a.as_standard_layout().iter().copied().collect::<Vec<_>>(),
        );
        write(
            &self.rhs,
            &b.as_standard_layout().iter().copied().collect::<Vec<_>>(),
        );
        if let Some(aux) = aux {
            write(&self.aux, &aux.to_vec());
        }
        self.ctx.check_errors("uploading matmul operands")
    }

    /// Records `repeats` back-to-back products in one submit and waits for them to finish.
    pub fn run(&self, repeats: usize) -> Result<()> {
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &self.bind_group, &[]);
            for _ in 0..repeats {
                pass.dispatch_workgroups(
                    (self.n as u32).div_ceil(self.tile.cols()),
                    (self.m as u32).div_ceil(self.tile.rows()),
                    self.models as u32,
                );
            }
        }
        self.ctx.queue.submit([encoder.finish()]);
        self.ctx.wait("running a matmul")
    }

    /// `C` after the last run, `[m, n]`.
    pub fn output(&self) -> Result<Array2<f32>> {
        self.read(&self.result)
    }

    /// The pre-activation `A·Bᵀ + bias` the forward epilogue stored, `[m, n]`.
    pub fn pre_activation(&self) -> Result<Array2<f32>> {
        self.read(&self.pre)
    }

    fn read(&self, buffer: &wgpu::Buffer) -> Result<Array2<f32>> {
        let values =
            self.ctx
                .read_back(buffer, 0, (self.m * self.n * 4) as u64, "a matmul result")?;
        Ok(Array2::from_shape_vec((self.m, self.n), values).expect("m x n values"))
    }
}

fn check_sizes(m: usize, n: usize, k: usize) -> Result<()> {
    if m == 0 || n == 0 || k == 0 {
        return Err(Error::Usage(format!(
            "matmul sizes must be at least 1, got {m}x{n}x{k}"
        )));
    }
    Ok(())
}
