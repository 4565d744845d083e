//! The matrix product, `C[M,N] = op(A)[M,K]·op(B)[K,N]` followed by an epilogue (bias and
//! activation, the activation's derivative, accumulation), for every model of a pack in one
//! dispatch: its uniform, its bindings, its pipelines (one WGSL source specialised by override
//! constants into tiles, layouts and epilogues), and the dispatch of one product. Tiles are in
//! `tile.rs`, layouts and epilogues in `variant.rs`, the choice of a tile per product in
//! `tuning.rs` (its timing rounds in `rounds.rs`, its cache file in `cache.rs`), a product on scratch buffers of its own in `staged.rs`.

mod cache;
mod rounds;
pub(crate) mod staged;
mod tile;
pub(crate) mod tuning;
mod variant;

pub use tile::MatmulTile;
pub(crate) use variant::Vec4Access;
pub use variant::{Epilogue, MatmulVariant};

use super::binding::{Binding, BindingSet, read, read_write, uniform};
use super::dispatch::{Dispatch, Extent, Grid, KernelKind};
use super::shader::{Pipelines, module};

const COMMON_WGSL: &str = include_str!("common.wgsl");
const TILED_WGSL: &str = include_str!("tiled.wgsl");
const SHUFFLE_WGSL: &str = include_str!("shuffle.wgsl");
const OPERANDS_SCALAR_WGSL: &str = include_str!("operands/scalar.wgsl");
const OPERANDS_VEC4_WGSL: &str = include_str!("operands/vec4.wgsl");
const RESULTS_SCALAR_WGSL: &str = include_str!("results/scalar.wgsl");
const RESULTS_VEC4_WGSL: &str = include_str!("results/vec4.wgsl");

/// The bindings of every matmul kernel (`common.wgsl`, `operands/`, `results/`): A, B, the
/// epilogue's input (the bias, or the pre-activations it differentiates), C, the
/// pre-activations the forward epilogue stores, and the shape.
pub(crate) const BINDINGS: [Binding; 6] = [
    read("lhs"),
    read("rhs"),
    read("aux"),
    read_write("result"),
    read_write("pre"),
    uniform("dims"),
];

/// The uniform of `common.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct MatmulDims {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    /// Elements between rows of A.
    pub lda: u32,
    /// Elements between consecutive models' A, B, C (and PRE), and AUX.
    pub strides: [u32; 4],
    /// Elements between rows of C (and of an `[M, N]` AUX).
    pub ldc: u32,
    /// Where A starts in its binding.
    pub offset_a: u32,
    /// C's (and AUX's) first column.
    pub offset_c: u32,
    pub _pad: u32,
}

/// A product's shape as a function of the batch: `M`, `N` and `K` (each the batch's rows or
/// fixed), the operands' strides between models, and where A and C sit in wider matrices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MatmulShape {
    pub m: Extent,
    pub n: Extent,
    pub k: Extent,
    /// Elements between consecutive models' A, B, C (and PRE), and AUX; 0 shares an operand.
    pub strides: [u32; 4],
    /// Elements between rows of A as stored, and where A starts in its binding.
    pub lda: u32,
    pub offset_a: u32,
    /// Elements between rows of C, and C's first column.
    pub ldc: u32,
    pub offset_c: u32,
}

impl MatmulShape {
    /// The uniform for a batch of `rows` rows.
    pub fn uniform(&self, rows: u32) -> MatmulDims {
        MatmulDims {
            m: self.m.at(rows),
            n: self.n.at(rows),
            k: self.k.at(rows),
            lda: self.lda,
            strides: self.strides,
            ldc: self.ldc,
            offset_a: self.offset_a,
            offset_c: self.offset_c,
            _pad: 0,
        }
    }

    /// Which accesses of `variant` over this shape may move vec4s, for every batch: the sizes
    /// that vary with the batch count as not multiples of 4.
    pub fn vec4(&self, variant: MatmulVariant) -> Vec4Access {
        let size = |e: Extent| e.fixed().map(|v| v as usize);
        let [a, b, c, _] = self.strides;
        Vec4Access {
            operands: variant.vec4_fits(
                size(self.m),
                size(self.n),
                size(self.k),
                &[a, b, self.lda, self.offset_a],
            ),
            result: variant.vec4_result_fits(size(self.n), &[c, self.ldc, self.offset_c]),
        }
    }

    /// `(M, N, K)` at a batch of `max_batch` rows.
    pub fn largest(&self, max_batch: usize) -> (usize, usize, usize) {
        let size = |e: Extent| e.fixed().map_or(max_batch, |v| v as usize);
        (size(self.m), size(self.n), size(self.k))
    }
}

/// The sources of the square tiles' module.
fn tiled_sources() -> [&'static str; 4] {
    [
        crate::activation::wgsl(),
        RESULTS_SCALAR_WGSL,
        COMMON_WGSL,
        TILED_WGSL,
    ]
}

/// The sources of the shuffle tiles' module loading (`operands`) and storing (`result`)
/// vec4s or scalars.
fn shuffle_sources(operands: bool, result: bool) -> [&'static str; 5] {
    [
        crate::activation::wgsl(),
        [OPERANDS_SCALAR_WGSL, OPERANDS_VEC4_WGSL][usize::from(operands)],
        [RESULTS_SCALAR_WGSL, RESULTS_VEC4_WGSL][usize::from(result)],
        COMMON_WGSL,
        SHUFFLE_WGSL,
    ]
}

/// A fingerprint of every matmul kernel's source, part of the key the tuning cache keeps its
/// choices under: after a change to the kernels their shapes are timed afresh, rather than
/// choices and figures measured with other code being trusted. (std's SipHash with fixed keys:
/// the same for every build of one toolchain; another toolchain's at worst re-times.)
pub(super) fn kernels_fingerprint() -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    tiled_sources().hash(&mut hasher);
    for operands in [false, true] {
        for result in [false, true] {
            shuffle_sources(operands, result).hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// Every module's sources, for the test of the bindings they declare.
#[cfg(test)]
pub(crate) fn sources() -> Vec<Vec<&'static str>> {
    let mut all = vec![tiled_sources().to_vec()];
    for operands in [false, true] {
        for result in [false, true] {
            all.push(shuffle_sources(operands, result).to_vec());
        }
    }
    all
}

/// The shuffle modules' names, by whether they load and then whether they store vec4s.
const SHUFFLE_NAMES: [[&str; 2]; 2] = [
    ["matmul (shuffles)", "matmul (shuffles, vec4 stores)"],
    [
        "matmul (shuffles, vec4 loads)",
        "matmul (shuffles, vec4 loads and stores)",
    ],
];

/// The compiled matmul: its modules, bind group layout and specialised pipelines.
pub(crate) struct MatmulOp {
    bindings: BindingSet<6>,
    pipelines: Pipelines,
    tiled: wgpu::ShaderModule,
    /// The shuffle modules, where the device has subgroups, indexed by whether they load vec4s
    /// and then whether they store them.
    shuffle: Option<[[wgpu::ShaderModule; 2]; 2]>,
}

impl MatmulOp {
    /// Compiles the modules on `device` (the shuffle ones where it has subgroups).
    pub fn new(device: &wgpu::Device) -> Self {
        let bindings = BindingSet::new(device, "matmul", &BINDINGS);
        let pipelines = Pipelines::new(device, "matmul", bindings.layout());
        let shuffle = device
            .features()
            .contains(wgpu::Features::SUBGROUP)
            .then(|| {
                [false, true].map(|operands| {
                    [false, true].map(|result| {
                        let names = SHUFFLE_NAMES[usize::from(operands)];
                        module(
                            device,
                            names[usize::from(result)],
                            &shuffle_sources(operands, result),
                        )
                    })
                })
            });
        Self {
            tiled: module(device, "matmul", &tiled_sources()),
            shuffle,
            bindings,
            pipelines,
        }
    }

    /// The kernel specialised to `variant`, computing `tile`s; a shuffle tile reads its
    /// operands and stores C as vec4s as `vec4` says (which [`MatmulVariant::vec4_fits`] and
    /// [`MatmulVariant::vec4_result_fits`] must allow; the square tiles ignore it).
    ///
    /// # Panics
    /// If `tile` is a shuffle tile and the device has no subgroups (tiles are chosen among those
    /// that run: [`MatmulTile::runs`]).
    pub fn pipeline(
        &self,
        variant: MatmulVariant,
        tile: MatmulTile,
        vec4: Vec4Access,
    ) -> wgpu::ComputePipeline {
        let [activation, slope] = variant.activation.kernel_constants();
        let common = [
            ("TRANSPOSE_A", f64::from(u8::from(variant.transpose_a))),
            ("TRANSPOSE_B", f64::from(u8::from(variant.transpose_b))),
            ("EPILOGUE", f64::from(variant.epilogue as u32)),
            activation,
            slope,
        ];
        let (name, module, specific) = match tile {
            MatmulTile::Shuffle { row_groups, width } => {
                let modules = self
                    .shuffle
                    .as_ref()
                    .expect("shuffle tiles are only chosen where the device has subgroups");
                let (operands, result) = (usize::from(vec4.operands), usize::from(vec4.result));
                (
                    SHUFFLE_NAMES[operands][result],
                    &modules[operands][result],
                    vec![
                        ("ROW_GROUPS", f64::from(row_groups)),
                        ("WIDTH", f64::from(width)),
                        ("VEC4", f64::from(u8::from(vec4.operands))),
                    ],
                )
            }
            square => (
                "matmul",
                &self.tiled,
                vec![
                    ("SIDE", f64::from(square.rows() / 4)),
                    ("SHARED", f64::from(u8::from(square == MatmulTile::Large))),
                ],
            ),
        };
        let constants: Vec<_> = common.into_iter().chain(specific).collect();
        self.pipelines
            .get(name, || module.clone(), "main", &constants)
    }

    /// A bind group of A, B, AUX, C, PRE and the shape uniform ([`BINDINGS`]).
    pub fn bind(&self, resources: [wgpu::BindingResource<'_>; 6]) -> wgpu::BindGroup {
        self.bindings.bind(resources)
    }

    /// The launch of `variant` over `shape` in `tile`s, with vec4 accesses where `shape`
    /// allows them for every batch, on `resources` ([`BINDINGS`]; the shape uniform must hold
    /// `shape.uniform(rows)` when it runs).
    pub fn dispatch(
        &self,
        variant: MatmulVariant,
        tile: MatmulTile,
        shape: &MatmulShape,
        resources: [wgpu::BindingResource<'_>; 6],
    ) -> Dispatch {
        Dispatch {
            kind: KernelKind::Matmul,
            pipeline: self.pipeline(variant, tile, shape.vec4(variant)),
            bind_group: self.bind(resources),
            grid: Grid::Tiles {
                m: shape.m,
                n: shape.n,
                rows: tile.rows(),
                cols: tile.cols(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;
    use crate::cpu::product;
    use crate::gpu::testing::{assert_close, context, random, read, run, storage, uniform as uni};
    use crate::model::Activation;

    /// Runs `variant` on A `[m, k]` (stored `[k, m]` when transposed), B `[n, k]` (transposed)
    /// and `aux`, C starting as `c`, in `tile`; returns C and PRE.
    fn gpu(
        variant: MatmulVariant,
        tile: MatmulTile,
        (a, b): (&Array2<f32>, &Array2<f32>),
        aux: &[f32],
        c: &Array2<f32>,
    ) -> (Vec<f32>, Vec<f32>) {
        let ctx = context();
        let op = MatmulOp::new(&ctx.device);
        let (m, n) = c.dim();
        let k = if variant.transpose_a {
            a.nrows()
        } else {
            a.ncols()
        };
        let fixed = |v: usize| Extent::Fixed(v as u32);
        let shape = MatmulShape {
            m: fixed(m),
            n: fixed(n),
            k: fixed(k),
            strides: [0; 4],
            lda: if variant.transpose_a { m } else { k } as u32,
            offset_a: 0,
            ldc: n as u32,
            offset_c: 0,
        };
        let buffers = [
            storage(&ctx, &flat(a)),
            storage(&ctx, &flat(b)),
            storage(&ctx, aux),
            storage(&ctx, &flat(c)),
            storage(&ctx, &vec![0.0f32; m * n]),
        ];
        let dims = uni(&ctx, &shape.uniform(0));
        let [lhs, rhs, aux, result, pre] = &buffers;
        let dispatch = op.dispatch(
            variant,
            tile,
            &shape,
            [
                lhs.as_entire_binding(),
                rhs.as_entire_binding(),
                aux.as_entire_binding(),
                result.as_entire_binding(),
                pre.as_entire_binding(),
                dims.as_entire_binding(),
            ],
        );
        run(&ctx, &[dispatch], 0, 1);
        (read(&ctx, result, m * n), read(&ctx, pre, m * n))
    }

    /// The values of `x` in row-major order.
    fn flat(x: &Array2<f32>) -> Vec<f32> {
        x.iter().copied().collect()
    }

    fn tiles() -> Vec<MatmulTile> {
        let mut tiles = vec![MatmulTile::Tiny, MatmulTile::Large];
        if context().has_shuffles() {
            tiles.push(MatmulTile::Shuffle {
                row_groups: 1,
                width: 8,
            });
        }
        tiles
    }

    #[test]
    fn the_forward_epilogue_is_the_cpu_product_plus_bias_through_the_activation() {
        // a = x·Wᵀ + b, x [9, 8], W [12, 8]: the shape of a layer's forward pass.
        let (x, w, bias) = (random(9, 8, 1), random(12, 8, 2), random(1, 12, 3));
        let variant = MatmulVariant {
            transpose_a: false,
            transpose_b: true,
            epilogue: Epilogue::BiasActivation,
            activation: Activation::Tanh,
        };
        let z = product(x.view(), w.t()) + bias.row(0);
        let activated = z.mapv(|v| Activation::Tanh.apply(v));
        for tile in tiles() {
            let c = Array2::zeros((9, 12));
            let (result, pre) = gpu(variant, tile, (&x, &w), &flat(&bias), &c);
            assert_close("pre-activations", &pre, &flat(&z));
            assert_close("activations", &result, &flat(&activated));
        }
    }

    #[test]
    fn accumulating_adds_the_cpu_product_to_c() {
        // ∂L/∂W += δᵀ·x, δ [9, 12], x [9, 8]: a weight gradient added to one already there.
        let (delta, x, before) = (random(9, 12, 4), random(9, 8, 5), random(12, 8, 6));
        let variant = MatmulVariant {
            transpose_a: true,
            transpose_b: false,
            epilogue: Epilogue::Accumulate,
            activation: Activation::Identity,
        };
        let expected: Array2<f32> = &before + &product(delta.t(), x.view());
        for tile in tiles() {
            let (result, _) = gpu(variant, tile, (&delta, &x), &[0.0], &before);
            assert_close("C + δᵀ·x", &result, &flat(&expected));
        }
    }
}
