//! A context: a device opened on the adapter a request chooses, with what runs on it: the
//! shader modules and layouts, compiled once, and the tuner that chooses each product's matmul
//! tile. Engines and packs are built on a context; the device's own services (limits, buffers,
//! errors, read-backs) are [`Device`]'s, reached through the context.

use std::sync::{Arc, Mutex, OnceLock};

use super::adapters::{
    AdapterChoice, AdapterRequest, Want, choose_adapter, enumerate_adapters, names_one,
};
use super::device::Device;
use super::ops::Kernels;
use super::ops::matmul::tuning::{Product, TunedShape, Tuner};
use super::ops::matmul::{MatmulTile, MatmulVariant};
use super::progress::{OnProgress, Progress};
use crate::error::{Error, Result};

/// Held while a context enumerates the adapters and opens a device: a process opens one at a
/// time. Vulkan and EGL drivers have deadlocked when several threads create instances and
/// devices at once (seen with NVIDIA's driver), and test harnesses open one per thread.
static OPENING: Mutex<()> = Mutex::new(());

/// Where [`GpuContext::auto`] runs: on a hardware GPU, or on the CPU engine and why.
#[derive(Debug)]
pub enum Placement {
    /// A device opened on a hardware GPU (or on the adapter the request named).
    Gpu(Box<GpuContext>),
    /// No hardware GPU could be used; the reason, as a phrase (`there is no hardware GPU, only
    /// software adapters (...), ...`).
    Cpu(String),
}

/// An open device with the kernels and matmul tuner that run on it; cheap to clone, shared by
/// every engine built on it. The device's own methods ([`Device::limits`],
/// [`Device::describe`], ...) are reached through `Deref`.
#[derive(Clone)]
pub struct GpuContext {
    device: Device,
    /// Each product's matmul tile.
    tuner: Tuner,
    /// The shader modules and layouts, compiled on first use.
    kernels: Arc<OnceLock<Kernels>>,
    /// Where progress of slow work goes.
    progress: Option<OnProgress>,
}

impl std::ops::Deref for GpuContext {
    type Target = Device;

    fn deref(&self) -> &Device {
        &self.device
    }
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.describe())
            .finish_non_exhaustive()
    }
}

impl GpuContext {
    /// Opens the adapter `request` selects, software ones included (see [`Want::AnyAdapter`]),
    /// with the adapter's full limits unless `request.limits` says otherwise; an error listing
    /// the adapters present when none matches.
    pub fn new(request: &AdapterRequest) -> Result<Self> {
        let _one_at_a_time = OPENING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut adapters = enumerate_adapters();
        let infos: Vec<_> = adapters.iter().map(wgpu::Adapter::get_info).collect();
        match choose_adapter(&infos, request, Want::AnyAdapter).map_err(env_note)? {
            AdapterChoice::Adapter(i) => Self::open(adapters.swap_remove(i), request),
            AdapterChoice::Cpu(why) => Err(Error::Usage(why)),
        }
    }

    /// What `--device auto` opens: a hardware GPU (discrete, integrated or virtual), or, when
    /// there is none, [`Placement::Cpu`] with the reason: a software adapter (lavapipe,
    /// llvmpipe) runs the same work far slower than the CPU engine. A request that names an
    /// adapter (backend, name, index) opens it whatever it is, and is an error when it matches
    /// none; a hardware GPU that fails to open leaves the CPU, saying why.
    pub fn auto(request: &AdapterRequest) -> Result<Placement> {
        let _one_at_a_time = OPENING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut adapters = enumerate_adapters();
        let infos: Vec<_> = adapters.iter().map(wgpu::Adapter::get_info).collect();
        match choose_adapter(&infos, request, Want::HardwareOrCpu).map_err(env_note)? {
            AdapterChoice::Cpu(why) => Ok(Placement::Cpu(why)),
            AdapterChoice::Adapter(i) => match Self::open(adapters.swap_remove(i), request) {
                Ok(ctx) => Ok(Placement::Gpu(Box::new(ctx))),
                Err(e) if !names_one(request) => {
                    Ok(Placement::Cpu(format!("the GPU could not be used: {e}")))
                }
                Err(e) => Err(e),
            },
        }
    }

    fn open(adapter: wgpu::Adapter, request: &AdapterRequest) -> Result<Self> {
        let device = Device::open(adapter, request.limits.clone(), request.device_memory)?;
        Ok(Self {
            device,
            tuner: Tuner::new(
                request.tuning.clone(),
                request.progress.clone(),
                request.cancel.clone(),
            ),
            kernels: Arc::new(OnceLock::new()),
            progress: request.progress.clone(),
        })
    }

    /// This context for engines that only evaluate and predict: autotuning times only the
    /// products those run (forward, at the engine's batch size), and the training products
    /// (weight and input gradients) take the fixed default tile, untimed and uncached. Shares
    /// everything else (device, buffers' accounting, kernels, cached choices) with `self`.
    pub fn for_inference(&self) -> Self {
        Self {
            tuner: self.tuner.for_inference(),
            ..self.clone()
        }
    }

    /// This context timing every product shape class afresh the first time it meets it, the
    /// cached choices notwithstanding (under autotuning; the new choices replace the cached
    /// ones): what `downhill tune` builds its engine on. Shares everything else with `self`.
    pub fn retuning(&self) -> Self {
        Self {
            tuner: self.tuner.retuning(),
            ..self.clone()
        }
    }

    /// What each timing of a product shape class on this context (and its clones) found, in
    /// the order they were timed.
    pub fn tuned_shapes(&self) -> Vec<TunedShape> {
        self.tuner.timed()
    }

    /// The shader modules and bind group layouts, compiled once on first use and shared by
    /// every engine, pack and product on this context (pipelines are specialised from them).
    pub(crate) fn kernels(&self) -> &Kernels {
        self.kernels.get_or_init(|| {
            if let Some(progress) = &self.progress {
                progress.report(&Progress::Compiling);
            }
            Kernels::new(&self.device.device)
        })
    }

    /// Whether `tile` runs here: every square tile does, the shuffle tiles where
    /// [`Device::has_shuffles`].
    pub fn runs(&self, tile: MatmulTile) -> bool {
        tile.runs(self.has_shuffles())
    }

    /// The tile for `C[m,n] = op(A)[m,k]·op(B)[k,n]`, computed for `models` side by side,
    /// under this context's [`Tuning`](super::Tuning): the fixed default, or the fastest on this
    /// adapter (timed now if its shape class is new).
    pub fn matmul_tile(
        &self,
        variant: MatmulVariant,
        shape: (usize, usize, usize),
        vec4: bool,
        models: usize,
    ) -> Result<MatmulTile> {
        self.product_tile(&Product {
            variant,
            shape,
            vec4,
            models,
            training: false,
        })
    }

    /// The tile for `product` under this context's [`Tuning`](super::Tuning) (timed now if its
    /// class is new).
    pub(crate) fn product_tile(&self, product: &Product) -> Result<MatmulTile> {
        self.tuner
            .tile(&self.device, &self.kernels().matmul, product)
    }

    /// Times every product among `products` whose shape class is new, reporting progress as
    /// `k of n`, so that an engine's products are tuned together before it is built.
    pub(crate) fn tune(&self, products: &[Product]) -> Result<()> {
        self.tuner
            .tune(&self.device, &self.kernels().matmul, products)
    }
}

/// `e` with a hint on `WGPU_BACKEND` when it is set and no adapter matched: it hides the
/// adapters on other backends (whose drivers may well be installed).
fn env_note(e: Error) -> Error {
    match (e, std::env::var("WGPU_BACKEND")) {
        (
            Error::NoAdapter {
                filter,
                available,
                hint: _,
            },
            Ok(backends),
        ) => Error::NoAdapter {
            filter,
            available,
            hint: format!(
                "WGPU_BACKEND={backends} hides the adapters on other backends: unset it to see \
                 them all, or use the CPU engine (--device cpu)"
            ),
        },
        (e, _) => e,
    }
}
