//! One matrix product on scratch buffers of its own, in a given tile: what the tuner times and
//! what [`Gemm`](crate::gpu::Gemm) runs. `C[M,N] = op(A)·op(B)` with the variant's layouts and
//! epilogue, for `models` copies side by side (the model index in z).

use ndarray::{Array2, ArrayView1, ArrayView2};

use super::tile::MatmulTile;
use super::variant::{Epilogue, MatmulVariant, Vec4Access};
use super::{MatmulDims, MatmulOp};
use crate::error::{Error, Result};
use crate::gpu::buffers::UniformBlock;
use crate::gpu::device::Device;

/// One matmul of fixed shape and tile, on buffers allocated once, ready to run repeatedly.
pub(crate) struct Staged {
    device: Device,
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

impl Staged {
    /// `C[m,n] = op(A)[m,k]·op(B)[k,n]` for each of `models` side by side in one dispatch (the
    /// model index in z, each operand `models` times over), as a pack runs it, in `tile`s,
    /// reading the operands as vec4s when `vec4` and storing C as vec4s wherever N allows;
    /// uploads and outputs are model 0's.
    pub fn new(
        device: &Device,
        op: &MatmulOp,
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
        if !tile.runs(device.has_shuffles()) {
            return Err(Error::Usage(format!(
                "the {} tile needs subgroups of at least 8 invocations, which {} lacks",
                tile.name(),
                device.describe()
            )));
        }
        device.scoped("preparing a matmul", || {
            let usage = wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
            let buffer = |name: &str, elements: usize| {
                device.storage_buffer(name, elements as u64 * 4, usage, "use smaller matrices")
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
            let bytes = std::mem::size_of::<MatmulDims>() as u64;
            let mut dims = UniformBlock::new(device, "matmul shape", 1, bytes, 16);
            let shape = MatmulDims {
                m: m as u32,
                n: n as u32,
                k: k as u32,
                lda: if variant.transpose_a { m } else { k } as u32,
                strides: [m * k, k * n, m * n, aux_len].map(|s| s as u32),
                ldc: n as u32,
                offset_a: 0,
                offset_c: 0,
                _pad: 0,
            };
            dims.set(0, bytemuck::bytes_of(&shape));
            dims.upload(&device.queue);
            let bind_group = op.bind([
                lhs.as_entire_binding(),
                rhs.as_entire_binding(),
                aux.as_entire_binding(),
                result.as_entire_binding(),
                pre.as_entire_binding(),
                dims.binding(0, bytes),
            ]);
            Ok(Self {
                device: device.clone(),
                variant,
                tile,
                m,
                n,
                k,
                models,
                pipeline: op.pipeline(
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

    /// Uploads the operands in their stored layouts (A is `[k, m]` when transposed, B is
    /// `[n, k]` when transposed) and `aux`: the bias `[n]` or the pre-activation `[m, n]` the
    /// epilogue reads.
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
            self.device
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
        self.device.check_errors("uploading matmul operands")
    }

    /// Records `repeats` back-to-back products in one submit and waits for them to finish.
    pub fn run(&self, repeats: usize) -> Result<()> {
        let mut encoder = self
            .device
            .device
            .create_command_encoder(&Default::default());
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
        self.device.queue.submit([encoder.finish()]);
        self.device.wait("running a matmul")
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
            self.device
                .read_back(buffer, 0, (self.m * self.n * 4) as u64, "a matmul result")?;
        Ok(Array2::from_shape_vec((self.m, self.n), values).expect("m x n values"))
    }
}

/// Fails unless every size of an `m × n × k` product is at least 1.
pub(crate) fn check_sizes(m: usize, n: usize, k: usize) -> Result<()> {
    if m == 0 || n == 0 || k == 0 {
        return Err(Error::Usage(format!(
            "matmul sizes must be at least 1, got {m}x{n}x{k}"
        )));
    }
    Ok(())
}
