//! The compute pipelines: WGSL sources, their bind group layouts, and the override constants
//! that specialise one source into a kernel (transposes, epilogue, activation, loss).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::loss::Loss;
use crate::model::Activation;
use crate::optim::Optimizer;

const ACTIVATION_WGSL: &str = include_str!("../../shaders/activation.wgsl");
const MATMUL_COMMON_WGSL: &str = include_str!("../../shaders/matmul_common.wgsl");
const MATMUL_WGSL: &str = include_str!("../../shaders/matmul.wgsl");
const MATMUL_SHUFFLE_WGSL: &str = include_str!("../../shaders/matmul_shuffle.wgsl");
const OPERANDS_SCALAR_WGSL: &str = include_str!("../../shaders/matmul_operands/scalar.wgsl");
const OPERANDS_VEC4_WGSL: &str = include_str!("../../shaders/matmul_operands/vec4.wgsl");
const RESULTS_SCALAR_WGSL: &str = include_str!("../../shaders/matmul_results/scalar.wgsl");
const RESULTS_VEC4_WGSL: &str = include_str!("../../shaders/matmul_results/vec4.wgsl");
const LOSS_WGSL: &str = include_str!("../../shaders/loss.wgsl");
const REDUCE_WGSL: &str = include_str!("../../shaders/reduce.wgsl");
const CLIP_WGSL: &str = include_str!("../../shaders/clip.wgsl");
const GATHER_WGSL: &str = include_str!("../../shaders/gather.wgsl");
const OPTIM_COMMON_WGSL: &str = include_str!("../../shaders/optim/common.wgsl");

/// The output tile one matmul workgroup computes, and how it is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatmulTile {
    /// 64×64, 4×4 outputs per invocation of a 16×16 workgroup, staging K-slices in workgroup
    /// memory: the most arithmetic per load on GPUs.
    Large,
    /// 32×32, 4×4 per invocation of an 8×8 workgroup reading storage directly: for products so
    /// small that a 64-wide tile would mostly compute padding (a batch of 32 rows through a
    /// layer of 32, say).
    Small,
    /// 16×16, 4×4 per invocation of a 4×4 workgroup reading storage directly: for the narrowest
    /// products (a layer of 10 outputs).
    Tiny,
    /// `8·row_groups × 4·width`: `width` invocations in a row, each owning four columns of every
    /// row, sharing rows of op(A) through subgroup shuffles (`shaders/matmul_shuffle.wgsl`); far
    /// the fastest on CPU rasterisers. Needs [`GpuContext::has_shuffles`](super::GpuContext).
    Shuffle {
        /// Groups of 8 rows: 1 or 2.
        row_groups: u32,
        /// Invocations per workgroup: 8, 16, 32 or 64.
        width: u32,
    },
}

impl MatmulTile {
    /// Rows of C per workgroup.
    pub fn rows(self) -> u32 {
        match self {
            MatmulTile::Large => 64,
            MatmulTile::Small => 32,
            MatmulTile::Tiny => 16,
            MatmulTile::Shuffle { row_groups, .. } => 8 * row_groups,
        }
    }

    /// Columns of C per workgroup.
    pub fn cols(self) -> u32 {
        match self {
            MatmulTile::Shuffle { width, .. } => 4 * width,
            square => square.rows(),
        }
    }

    /// The fewest rows or columns any tile has: bounds the workgroups a dispatch can need.
    pub const MIN_SIDE: u32 = 8;

    /// The fixed default: among the tiles every adapter runs (no shuffles), the one that
    /// computes the least padding for an `m × n` product, the larger one on a tie.
    pub fn for_shape(m: usize, n: usize) -> Self {
        [MatmulTile::Large, MatmulTile::Small, MatmulTile::Tiny]
            .into_iter()
            .min_by_key(|&t| t.padded(m, n))
            .expect("three tiles")
    }

    /// Every tile worth timing for an `m × n` product: the square ones, and with `shuffles` the
    /// shuffle tiles whose padding is less than the product itself (narrow tiles for narrow
    /// products).
    pub fn candidates(m: usize, n: usize, shuffles: bool) -> Vec<Self> {
        let mut tiles = vec![MatmulTile::Large, MatmulTile::Small, MatmulTile::Tiny];
        if shuffles {
            for row_groups in [1, 2] {
                for width in [8, 16, 32, 64] {
                    let tile = MatmulTile::Shuffle { row_groups, width };
                    if width == 8 || tile.padded(m, n) < 2 * m * n {
                        tiles.push(tile);
                    }
                }
            }
        }
        tiles
    }

    /// Elements of C computed, padding included.
    fn padded(self, m: usize, n: usize) -> usize {
        m.next_multiple_of(self.rows() as usize) * n.next_multiple_of(self.cols() as usize)
    }

    /// A short name for reports and the tuning cache: `large`, `small`, `tiny`, `shuffle16x256`.
    pub fn name(self) -> String {
        match self {
            MatmulTile::Large => "large".into(),
            MatmulTile::Small => "small".into(),
            MatmulTile::Tiny => "tiny".into(),
            MatmulTile::Shuffle { .. } => format!("shuffle{}x{}", self.rows(), self.cols()),
        }
    }

    /// The tile [`name`](Self::name) gives, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "large" => Some(MatmulTile::Large),
            "small" => Some(MatmulTile::Small),
            "tiny" => Some(MatmulTile::Tiny),
            _ => {
                let (rows, cols) = name.strip_prefix("shuffle")?.split_once('x')?;
                let (rows, cols): (u32, u32) = (rows.parse().ok()?, cols.parse().ok()?);
                let tile = MatmulTile::Shuffle {
                    row_groups: rows / 8,
                    width: cols / 4,
                };
                (matches!(rows, 8 | 16) && matches!(cols, 32 | 64 | 128 | 256)).then_some(tile)
            }
        }
    }
}

/// Invocations per workgroup of the row-wise loss and column-sum kernels.
pub(crate) const ROW_GROUP: u32 = 64;
/// Invocations per workgroup of the optimizer kernels.
pub(crate) const OPTIM_GROUP: u32 = 256;

/// What the matmul kernel does with each element of the product (see `shaders/matmul.wgsl`).
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

/// How a binding is declared in a bind group layout.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Read,
    ReadWrite,
    Uniform,
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

/// A specialised matmul pipeline: its module (0 for the square tiles, then the shuffle
/// modules) and its override constants, bit for bit.
type MatmulKey = (usize, Vec<(&'static str, u64)>);

/// Compiled shader modules and layouts, from which pipelines are specialised.
pub(crate) struct Kernels {
    device: wgpu::Device,
    /// Matmul pipelines specialised so far: a pack asks for the same kernel for many
    /// dispatches (blocks of a split layer, layers of one width), and engines on one context
    /// share them.
    matmul_pipelines: Mutex<HashMap<MatmulKey, wgpu::ComputePipeline>>,
    matmul: wgpu::ShaderModule,
    /// The shuffle matmul, where the device has subgroups, indexed by whether it loads vec4s
    /// and then whether it stores them.
    matmul_shuffle: Option<[[wgpu::ShaderModule; 2]; 2]>,
    loss: wgpu::ShaderModule,
    reduce: wgpu::ShaderModule,
    clip: wgpu::ShaderModule,
    pub matmul_layout: wgpu::BindGroupLayout,
    pub loss_layout: wgpu::BindGroupLayout,
    pub reduce_layout: wgpu::BindGroupLayout,
    pub optim_layout: wgpu::BindGroupLayout,
    pub clip_layout: wgpu::BindGroupLayout,
    pub gather_layout: wgpu::BindGroupLayout,
}

/// The runtime checks compiled into every kernel: buffer bounds checks stay on (no kernel can
/// touch memory outside its bindings); the guards against non-terminating loops and integer
/// division by zero are left out, which makes small packs' steps about a fifth faster on the
/// software adapter (`downhill bench sweep`, BENCHMARKS.md).
fn runtime_checks() -> wgpu::ShaderRuntimeChecks {
    wgpu::ShaderRuntimeChecks {
        bounds_checks: true,
        force_loop_bounding: false,
        int_div_checks: false,
        ..wgpu::ShaderRuntimeChecks::checked()
    }
}

fn module(device: &wgpu::Device, label: &str, sources: &[&str]) -> wgpu::ShaderModule {
    let descriptor = wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(sources.concat().into()),
    };
    // SAFETY: `runtime_checks` keeps bounds checks and drops two guards whose conditions every
    // kernel under `shaders/` meets by construction. Every loop is a counted `for` whose counter
    // rises by a constant to a bound below 2^31 (a dimension, row count or parameter count of
    // buffers that fit a binding) or halves from a constant to zero, so no loop runs forever.
    // Every integer division and modulo is by a nonzero constant or override (tile sizes,
    // workgroup sizes). A new kernel must keep both properties.
    unsafe { device.create_shader_module_trusted(descriptor, runtime_checks()) }
}

fn layout(device: &wgpu::Device, label: &str, slots: &[Slot]) -> wgpu::BindGroupLayout {
    let entries: Vec<_> = slots
        .iter()
        .enumerate()
        .map(|(i, slot)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: match slot {
                    Slot::Read => wgpu::BufferBindingType::Storage { read_only: true },
                    Slot::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
                    Slot::Uniform => wgpu::BufferBindingType::Uniform,
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries: &entries,
    })
}

/// The `ACTIVATION` and `LEAKY_SLOPE` override values for `activation`.
fn activation_constants(activation: Activation) -> [(&'static str, f64); 2] {
    let (id, slope) = match activation {
        Activation::Identity => (0, 0.0),
        Activation::Relu => (1, 0.0),
        Activation::LeakyRelu { slope } => (2, f64::from(slope)),
        Activation::Sigmoid => (3, 0.0),
        Activation::Tanh => (4, 0.0),
        Activation::Gelu => (5, 0.0),
    };
    [("ACTIVATION", f64::from(id)), ("LEAKY_SLOPE", slope)]
}

impl Kernels {
    /// Compiles every module and layout on `device`.
    pub fn new(device: &wgpu::Device) -> Self {
        use Slot::*;
        Self {
            device: device.clone(),
            matmul_pipelines: Mutex::default(),
            matmul: module(
                device,
                "matmul",
                &[
                    ACTIVATION_WGSL,
                    RESULTS_SCALAR_WGSL,
                    MATMUL_COMMON_WGSL,
                    MATMUL_WGSL,
                ],
            ),
            matmul_shuffle: device
                .features()
                .contains(wgpu::Features::SUBGROUP)
                .then(|| {
                    [OPERANDS_SCALAR_WGSL, OPERANDS_VEC4_WGSL].map(|operands| {
                        [RESULTS_SCALAR_WGSL, RESULTS_VEC4_WGSL].map(|results| {
                            module(
                                device,
                                "matmul (shuffles)",
                                &[
                                    ACTIVATION_WGSL,
                                    operands,
                                    results,
                                    MATMUL_COMMON_WGSL,
                                    MATMUL_SHUFFLE_WGSL,
                                ],
                            )
                        })
                    })
                }),
            loss: module(device, "loss", &[ACTIVATION_WGSL, LOSS_WGSL]),
            reduce: module(device, "reduce", &[REDUCE_WGSL]),
            clip: module(device, "clip", &[CLIP_WGSL]),
            matmul_layout: layout(
                device,
                "matmul",
                &[Read, Read, Read, ReadWrite, ReadWrite, Uniform],
            ),
            loss_layout: layout(
                device,
                "loss",
                &[
                    Read, Read, Read, Read, ReadWrite, ReadWrite, Uniform, ReadWrite, ReadWrite,
                ],
            ),
            reduce_layout: layout(device, "reduce", &[Read, ReadWrite, Uniform]),
            optim_layout: layout(
                device,
                "optimizer",
                &[
                    ReadWrite, Read, ReadWrite, ReadWrite, ReadWrite, Read, Read, ReadWrite,
                    Uniform,
                ],
            ),
            clip_layout: layout(device, "clip", &[Read, ReadWrite, Uniform]),
            gather_layout: layout(
                device,
                "gather",
                &[
                    Read, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite, Uniform,
                ],
            ),
        }
    }

    fn pipeline(
        &self,
        label: &str,
        module: &wgpu::ShaderModule,
        layout: &wgpu::BindGroupLayout,
        entry: &str,
        constants: &[(&str, f64)],
    ) -> wgpu::ComputePipeline {
        let pipeline_layout = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(label),
                bind_group_layouts: &[Some(layout)],
                immediate_size: 0,
            });
        self.device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: Some(&pipeline_layout),
                module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            })
    }

    /// The matmul kernel specialised to `variant`, computing `tile`s; a shuffle tile reads its
    /// operands and stores C as vec4s as `vec4` says (which [`MatmulVariant::vec4_fits`] and
    /// [`MatmulVariant::vec4_result_fits`] must allow; the square tiles ignore it).
    ///
    /// # Panics
    /// If `tile` is a shuffle tile and the device has no subgroups ([`Kernels::has_shuffles`]).
    pub fn matmul(
        &self,
        variant: MatmulVariant,
        tile: MatmulTile,
        vec4: Vec4Access,
    ) -> wgpu::ComputePipeline {
        let [activation, slope] = activation_constants(variant.activation);
        let common = [
            ("TRANSPOSE_A", f64::from(u8::from(variant.transpose_a))),
            ("TRANSPOSE_B", f64::from(u8::from(variant.transpose_b))),
            ("EPILOGUE", f64::from(variant.epilogue as u32)),
            activation,
            slope,
        ];
        let (slot, module, specific) = match tile {
            MatmulTile::Shuffle { row_groups, width } => {
                let modules = self
                    .matmul_shuffle
                    .as_ref()
                    .expect("shuffle tiles are only chosen where the device has subgroups");
                let (operands, result) = (usize::from(vec4.operands), usize::from(vec4.result));
                (
                    1 + 2 * operands + result,
                    &modules[operands][result],
                    vec![
                        ("ROW_GROUPS", f64::from(row_groups)),
                        ("WIDTH", f64::from(width)),
                        ("VEC4", f64::from(u8::from(vec4.operands))),
                    ],
                )
            }
            square => (
                0,
                &self.matmul,
                vec![
                    ("SIDE", f64::from(square.rows() / 4)),
                    ("SHARED", f64::from(u8::from(square == MatmulTile::Large))),
                ],
            ),
        };
        let constants: Vec<_> = common.into_iter().chain(specific).collect();
        let key = (
            slot,
            constants.iter().map(|&(k, v)| (k, v.to_bits())).collect(),
        );
        let mut pipelines = self
            .matmul_pipelines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pipelines
            .entry(key)
            .or_insert_with(|| {
                self.pipeline("matmul", module, &self.matmul_layout, "main", &constants)
            })
            .clone()
    }

    /// The loss kernels for `loss` over an output layer with `activation`: per-row loss and
    /// gradient, then the mean.
    pub fn loss(
        &self,
        loss: Loss,
        activation: Activation,
    ) -> (wgpu::ComputePipeline, wgpu::ComputePipeline) {
        let id = match loss {
            Loss::Mse => 0,
            Loss::CrossEntropy => 1,
            Loss::BceWithLogits => 2,
        };
        let [act, slope] = activation_constants(activation);
        let constants = [("LOSS", f64::from(id)), act, slope];
        let rows = self.pipeline(
            "loss rows",
            &self.loss,
            &self.loss_layout,
            "rows",
            &constants,
        );
        let mean = self.pipeline(
            "loss mean",
            &self.loss,
            &self.loss_layout,
            "mean",
            &constants,
        );
        (rows, mean)
    }

    /// The deterministic column-sum kernel (bias gradients).
    pub fn column_sums(&self) -> wgpu::ComputePipeline {
        self.pipeline(
            "column sums",
            &self.reduce,
            &self.reduce_layout,
            "column_sums",
            &[],
        )
    }

    /// The gradient-clipping kernel (global norm to scale).
    pub fn clip(&self) -> wgpu::ComputePipeline {
        self.pipeline("clip", &self.clip, &self.clip_layout, "main", &[])
    }

    /// Clipping over gradients cut into chunks: each chunk's sum of squares, then each model's
    /// scale from its chunks' sums.
    pub fn clip_chunked(&self) -> (wgpu::ComputePipeline, wgpu::ComputePipeline) {
        (
            self.pipeline(
                "clip chunk",
                &self.clip,
                &self.clip_layout,
                "partial_sums",
                &[],
            ),
            self.pipeline(
                "clip scale",
                &self.clip,
                &self.clip_layout,
                "scale_from_partials",
                &[],
            ),
        )
    }

    /// The kernel that gathers a batch from a GPU-resident dataset.
    pub fn gather(&self) -> wgpu::ComputePipeline {
        let module = module(&self.device, "gather", &[GATHER_WGSL]);
        self.pipeline("gather", &module, &self.gather_layout, "main", &[])
    }

    /// The fused update kernel of `optimizer`.
    pub fn optimizer(&self, optimizer: &Optimizer) -> wgpu::ComputePipeline {
        let source = optimizer.rule().wgsl();
        let module = module(&self.device, optimizer.name(), &[OPTIM_COMMON_WGSL, source]);
        self.pipeline(optimizer.name(), &module, &self.optim_layout, "main", &[])
    }
}
