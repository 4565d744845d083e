//! Finding the adapters wgpu can see and choosing one: the rules behind `--device`, `--adapter`
//! and `--backend` as a pure function over the adapters' infos, and what to say when nothing
//! matches.

use super::ops::matmul::tuning::Tuning;
use super::progress::{Cancel, OnProgress};
use crate::error::{Error, Result};

/// Which adapter to open. The default takes the best adapter present: a discrete GPU, else an
/// integrated one, else a virtual one, else a software (CPU) one; among equals, native APIs
/// (Vulkan, Metal, DX12) before GL. [`GpuContext::auto`](super::GpuContext::auto) takes only a
/// hardware GPU.
#[derive(Debug, Clone, Default)]
pub struct AdapterRequest {
    /// Only adapters on this backend.
    pub backend: Option<wgpu::Backend>,
    /// Only adapters whose name contains this text (case-insensitive).
    pub name: Option<String>,
    /// Only the adapter at this position in [`enumerate_adapters`]' list (`downhill devices`).
    pub index: Option<usize>,
    /// Limits to request instead of the adapter's maximum (to emulate a smaller device).
    pub limits: Option<wgpu::Limits>,
    /// How matmul tiles are chosen (fixed unless asked to autotune).
    pub tuning: Tuning,
    /// Device memory in bytes to plan within instead of what the adapter reports (a share of a
    /// GPU used by others, or an adapter that reports none).
    pub device_memory: Option<u64>,
    /// Between a discrete and an integrated GPU, `LowPower` prefers the integrated one; the
    /// others prefer the discrete one.
    pub power_preference: wgpu::PowerPreference,
    /// Called as kernels compile and matmul tiles are timed (the slow work of a first run).
    pub progress: Option<OnProgress>,
    /// When set, autotuning (and so building an engine that tunes) stops with
    /// [`Error::Cancelled`] at its next check.
    pub cancel: Option<Cancel>,
    /// The Vulkan loader's driver-list override in effect (`VK_DRIVER_FILES` or
    /// `VK_ICD_FILENAMES`, and its value): when no adapter matches, the error names it, since
    /// it hides every driver it leaves out.
    pub vulkan_driver_files: Option<(String, String)>,
}

impl AdapterRequest {
    /// The default request with what wgpu's environment variables ask for:
    /// `WGPU_ADAPTER_NAME` (a piece of the adapter's name, case-insensitive, as
    /// [`AdapterRequest::name`]) and `WGPU_POWER_PREF` (`low` prefers an integrated GPU to a
    /// discrete one), and the Vulkan loader's `VK_ICD_FILENAMES` or `VK_DRIVER_FILES`
    /// ([`AdapterRequest::vulkan_driver_files`]). `WGPU_BACKEND` (`vulkan`, `gl`, `metal`,
    /// `dx12`, comma-separated) needs nothing here: every context's wgpu instance reads it, so
    /// adapters on other backends are not seen at all.
    pub fn from_env() -> Self {
        Self {
            name: std::env::var("WGPU_ADAPTER_NAME")
                .ok()
                .filter(|n| !n.is_empty()),
            power_preference: wgpu::PowerPreference::from_env().unwrap_or_default(),
            vulkan_driver_files: ["VK_ICD_FILENAMES", "VK_DRIVER_FILES"]
                .iter()
                .find_map(|v| std::env::var(v).ok().map(|value| (v.to_string(), value))),
            ..Self::default()
        }
    }
}

/// Every adapter wgpu can see, on every backend compiled in (or only those `WGPU_BACKEND`
/// names, e.g. `WGPU_BACKEND=vulkan` or `gl,vulkan`: wgpu's instance reads it).
pub fn enumerate_adapters() -> Vec<wgpu::Adapter> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
}

/// What kind of adapter [`choose_adapter`] may settle on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// The best adapter that matches, a software one (lavapipe, llvmpipe, WARP) included, or an
    /// error when none does: `--device gpu`, and [`GpuContext::new`](super::GpuContext::new).
    AnyAdapter,
    /// A hardware GPU (discrete, integrated or virtual), else the CPU engine, saying why:
    /// `--device auto`. A request that names an adapter (by name, index or backend) is taken at
    /// its word, as with [`Want::AnyAdapter`].
    HardwareOrCpu,
}

/// What [`choose_adapter`] settled on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdapterChoice {
    /// The adapter at this position in the list it was given.
    Adapter(usize),
    /// No adapter: the CPU engine, for the reason given (a phrase such as `there is no hardware
    /// GPU, only software adapters (...), ...`).
    Cpu(String),
}

/// Whether an adapter of this type is a real GPU: discrete, integrated or virtual (not a
/// software rasteriser, nor one of unknown type).
pub fn is_hardware(device_type: wgpu::DeviceType) -> bool {
    matches!(
        device_type,
        wgpu::DeviceType::DiscreteGpu
            | wgpu::DeviceType::IntegratedGpu
            | wgpu::DeviceType::VirtualGpu
    )
}

/// Lower is preferred: discrete, integrated, virtual, CPU, other; integrated first when `power`
/// asks for low power.
fn type_rank(device_type: wgpu::DeviceType, power: wgpu::PowerPreference) -> u8 {
    match (device_type, power) {
        (wgpu::DeviceType::IntegratedGpu, wgpu::PowerPreference::LowPower) => 0,
        (wgpu::DeviceType::DiscreteGpu, wgpu::PowerPreference::LowPower) => 1,
        (wgpu::DeviceType::DiscreteGpu, _) => 0,
        (wgpu::DeviceType::IntegratedGpu, _) => 1,
        (wgpu::DeviceType::VirtualGpu, _) => 2,
        (wgpu::DeviceType::Cpu, _) => 3,
        (wgpu::DeviceType::Other, _) => 4,
    }
}

/// Lower is preferred: native compute APIs before GL.
fn backend_rank(backend: wgpu::Backend) -> u8 {
    match backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        wgpu::Backend::Gl => 1,
        _ => 2,
    }
}

/// The adapter a rank of a data-parallel run takes on a host with several hardware GPUs: among
/// the hardware adapters on `backend` (else on the best backend any of them is on: native APIs
/// before GL, so that one GPU seen twice counts once), the one at `local_rank` modulo their
/// number. `None` with fewer than two (one GPU, or software adapters, shared by the ranks).
pub fn rank_adapter(
    adapters: &[wgpu::AdapterInfo],
    backend: Option<wgpu::Backend>,
    local_rank: usize,
) -> Option<usize> {
    let hardware = |i: &usize| is_hardware(adapters[*i].device_type);
    let backend = backend.or_else(|| {
        (0..adapters.len())
            .filter(hardware)
            .map(|i| adapters[i].backend)
            .min_by_key(|&b| backend_rank(b))
    })?;
    let gpus: Vec<usize> = (0..adapters.len())
        .filter(|i| hardware(i) && adapters[*i].backend == backend)
        .collect();
    (gpus.len() > 1).then(|| gpus[local_rank % gpus.len()])
}

/// Whether `request` names an adapter: by backend, by a piece of its name or by its index.
pub(crate) fn names_one(request: &AdapterRequest) -> bool {
    request.backend.is_some() || request.name.is_some() || request.index.is_some()
}

/// `name (Backend)`, as messages list adapters.
fn short(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?})", info.name, info.backend)
}

/// Chooses among `adapters` (in [`enumerate_adapters`]' order) what `request` selects, as `want`
/// says:
///
/// - a request that names an adapter (backend, name, index) and matches none is an error that
///   lists the adapters present, whatever `want` is;
/// - among those that match, the best: discrete, integrated, virtual, software, other (integrated
///   first under [`wgpu::PowerPreference::LowPower`]), native APIs before GL;
/// - with [`Want::HardwareOrCpu`] and nothing named, the CPU engine when the best is not a
///   hardware GPU (or there is no adapter at all), with the reason.
pub fn choose_adapter(
    adapters: &[wgpu::AdapterInfo],
    request: &AdapterRequest,
    want: Want,
) -> Result<AdapterChoice> {
    let wanted_name = request.name.as_ref().map(|n| n.to_lowercase());
    let best = adapters
        .iter()
        .enumerate()
        .filter(|&(i, info)| {
            request.index.is_none_or(|wanted| wanted == i)
                && request.backend.is_none_or(|b| info.backend == b)
                && wanted_name
                    .as_ref()
                    .is_none_or(|n| info.name.to_lowercase().contains(n))
        })
        .min_by_key(|(_, info)| {
            (
                type_rank(info.device_type, request.power_preference),
                backend_rank(info.backend),
            )
        });
    let automatic = want == Want::HardwareOrCpu && !names_one(request);
    match best {
        None if automatic => Ok(AdapterChoice::Cpu("wgpu found no GPU adapter".into())),
        None => Err(no_adapter(adapters, request)),
        Some((_, info)) if automatic && !is_hardware(info.device_type) => {
            let software = adapters
                .iter()
                .all(|a| a.device_type == wgpu::DeviceType::Cpu);
            let listed = adapters.iter().map(short).collect::<Vec<_>>().join(", ");
            Ok(AdapterChoice::Cpu(if software {
                format!(
                    "there is no hardware GPU, only software adapters ({listed}), which run \
                     slower than the CPU engine; --device gpu uses one"
                )
            } else {
                format!(
                    "there is no hardware GPU, only adapters of software or unknown type \
                     ({listed}); --device gpu uses one"
                )
            }))
        }
        Some((i, _)) => Ok(AdapterChoice::Adapter(i)),
    }
}

/// The error for a request that matches no adapter: what was asked for, what exists, and what
/// to do (install Mesa's Vulkan driver only where there is no Vulkan adapter at all).
fn no_adapter(adapters: &[wgpu::AdapterInfo], request: &AdapterRequest) -> Error {
    let mut filter = String::new();
    if let Some(b) = request.backend {
        filter += &format!(" on backend {b:?}");
    }
    if let Some(i) = request.index {
        filter += &format!(" at index {i}");
    }
    if let Some(n) = &request.name {
        filter += &format!(" with a name containing `{n}`");
    }
    let available = if adapters.is_empty() {
        "none".to_string()
    } else {
        adapters
            .iter()
            .enumerate()
            .map(|(i, info)| {
                format!(
                    "[{i}] `{}` ({:?}, {:?})",
                    info.name, info.backend, info.device_type
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let hint = if adapters.iter().any(|a| a.backend == wgpu::Backend::Vulkan) {
        "name one of those instead (--adapter takes an index or a piece of a name, as \
         `downhill devices` lists them; --backend one of vulkan, metal, dx12, gl), or use the \
         CPU engine (--device cpu)"
            .to_string()
    } else if let Some((variable, value)) = &request.vulkan_driver_files {
        format!(
            "{variable}={value} limits the Vulkan drivers the loader sees: unset it to see every \
             installed driver, or use the CPU engine (--device cpu)"
        )
    } else {
        "to get a software Vulkan adapter on Debian/Ubuntu, install the package \
         `mesa-vulkan-drivers` (apt-get install mesa-vulkan-drivers), or use the CPU engine \
         (--device cpu)"
            .to_string()
    };
    Error::NoAdapter {
        filter,
        available,
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wgpu::{Backend, DeviceType};

    fn info(name: &str, backend: Backend, device_type: DeviceType) -> wgpu::AdapterInfo {
        wgpu::AdapterInfo {
            name: name.into(),
            ..wgpu::AdapterInfo::new(device_type, backend)
        }
    }

    fn software() -> Vec<wgpu::AdapterInfo> {
        vec![
            info("lavapipe", Backend::Vulkan, DeviceType::Cpu),
            info("llvmpipe", Backend::Gl, DeviceType::Cpu),
        ]
    }

    fn with_gpus() -> Vec<wgpu::AdapterInfo> {
        let mut all = software();
        all.push(info(
            "Intel UHD",
            Backend::Vulkan,
            DeviceType::IntegratedGpu,
        ));
        all.push(info("NVIDIA RTX", Backend::Gl, DeviceType::DiscreteGpu));
        all.push(info("NVIDIA RTX", Backend::Vulkan, DeviceType::DiscreteGpu));
        all
    }

    fn choose(
        adapters: &[wgpu::AdapterInfo],
        request: &AdapterRequest,
        want: Want,
    ) -> AdapterChoice {
        choose_adapter(adapters, request, want).unwrap()
    }

    #[test]
    fn auto_takes_the_best_hardware_gpu() {
        let any = AdapterRequest::default();
        // Discrete before integrated, Vulkan before GL.
        assert_eq!(
            choose(&with_gpus(), &any, Want::HardwareOrCpu),
            AdapterChoice::Adapter(4)
        );
        let low = AdapterRequest {
            power_preference: wgpu::PowerPreference::LowPower,
            ..AdapterRequest::default()
        };
        assert_eq!(
            choose(&with_gpus(), &low, Want::HardwareOrCpu),
            AdapterChoice::Adapter(2)
        );
        let virtual_only = [
            info("lavapipe", Backend::Vulkan, DeviceType::Cpu),
            info("virgl", Backend::Vulkan, DeviceType::VirtualGpu),
        ];
        assert_eq!(
            choose(&virtual_only, &any, Want::HardwareOrCpu),
            AdapterChoice::Adapter(1)
        );
    }

    #[test]
    fn auto_runs_on_the_cpu_where_there_are_only_software_adapters() {
        let any = AdapterRequest::default();
        let AdapterChoice::Cpu(why) = choose(&software(), &any, Want::HardwareOrCpu) else {
            panic!("auto chose a software adapter");
        };
        assert!(
            why.contains(
                "no hardware GPU, only software adapters (lavapipe (Vulkan), llvmpipe (Gl))"
            ) && why.contains("--device gpu uses one"),
            "{why}"
        );
        let AdapterChoice::Cpu(why) = choose(&[], &any, Want::HardwareOrCpu) else {
            panic!("auto chose an adapter from none");
        };
        assert!(why.contains("no GPU adapter"), "{why}");
        let unknown = [info("mystery", Backend::Gl, DeviceType::Other)];
        let AdapterChoice::Cpu(why) = choose(&unknown, &any, Want::HardwareOrCpu) else {
            panic!("auto chose an adapter of unknown type");
        };
        assert!(
            why.contains("software or unknown type (mystery (Gl))"),
            "{why}"
        );
    }

    #[test]
    fn gpu_takes_a_software_adapter_when_it_is_the_only_kind() {
        let any = AdapterRequest::default();
        assert_eq!(
            choose(&software(), &any, Want::AnyAdapter),
            AdapterChoice::Adapter(0)
        );
        assert_eq!(
            choose(&with_gpus(), &any, Want::AnyAdapter),
            AdapterChoice::Adapter(4)
        );
        let text = choose_adapter(&[], &any, Want::AnyAdapter)
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("adapters present: none") && text.contains("mesa-vulkan-drivers"),
            "{text}"
        );
    }

    #[test]
    fn a_named_adapter_is_taken_at_its_word() {
        let llvmpipe = AdapterRequest {
            name: Some("LLVMPIPE".into()),
            ..AdapterRequest::default()
        };
        for want in [Want::AnyAdapter, Want::HardwareOrCpu] {
            assert_eq!(
                choose(&software(), &llvmpipe, want),
                AdapterChoice::Adapter(1)
            );
        }
        let gl = AdapterRequest {
            backend: Some(Backend::Gl),
            ..AdapterRequest::default()
        };
        assert_eq!(
            choose(&with_gpus(), &gl, Want::HardwareOrCpu),
            AdapterChoice::Adapter(3)
        );
        let first = AdapterRequest {
            index: Some(0),
            ..AdapterRequest::default()
        };
        assert_eq!(
            choose(&with_gpus(), &first, Want::HardwareOrCpu),
            AdapterChoice::Adapter(0)
        );
    }

    #[test]
    fn a_named_adapter_that_is_absent_is_an_error_listing_those_present() {
        let nvidia = AdapterRequest {
            name: Some("nvidia".into()),
            ..AdapterRequest::default()
        };
        let metal = AdapterRequest {
            backend: Some(Backend::Metal),
            ..AdapterRequest::default()
        };
        for want in [Want::AnyAdapter, Want::HardwareOrCpu] {
            let text = choose_adapter(&software(), &nvidia, want)
                .unwrap_err()
                .to_string();
            assert!(
                text.contains("no GPU adapter found with a name containing `nvidia`")
                    && text.contains("[0] `lavapipe` (Vulkan, Cpu), [1] `llvmpipe` (Gl, Cpu)"),
                "{text}"
            );
            // A Vulkan adapter is present: its driver is installed, so no advice to install it.
            assert!(!text.contains("mesa-vulkan-drivers"), "{text}");
            let text = choose_adapter(&software(), &metal, want)
                .unwrap_err()
                .to_string();
            assert!(text.contains("on backend Metal"), "{text}");
        }
        // With no Vulkan adapter at all, installing Mesa's is the advice.
        let gl_only = [info("llvmpipe", Backend::Gl, DeviceType::Cpu)];
        let text = choose_adapter(&gl_only, &nvidia, Want::AnyAdapter)
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("apt-get install mesa-vulkan-drivers"),
            "{text}"
        );
        // Unless the loader was told which drivers to load: then that list is the likely cause.
        let limited = AdapterRequest {
            vulkan_driver_files: Some(("VK_DRIVER_FILES".into(), "/x/icd.json".into())),
            ..nvidia
        };
        let text = choose_adapter(&gl_only, &limited, Want::AnyAdapter)
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("VK_DRIVER_FILES=/x/icd.json limits the Vulkan drivers")
                && !text.contains("mesa-vulkan-drivers"),
            "{text}"
        );
    }

    #[test]
    fn each_rank_takes_its_own_gpu_on_the_native_backend() {
        let mut two = with_gpus();
        two.push(info(
            "NVIDIA RTX 2",
            Backend::Vulkan,
            DeviceType::DiscreteGpu,
        ));
        // Hardware on Vulkan: the integrated GPU (2), and the two discrete ones (4, 5); the GL
        // view of a GPU (3) is not counted again.
        let taken: Vec<_> = (0..4).map(|r| rank_adapter(&two, None, r)).collect();
        assert_eq!(taken, [Some(2), Some(4), Some(5), Some(2)]);
        assert_eq!(
            rank_adapter(&two, Some(Backend::Gl), 0),
            None,
            "one GPU on GL"
        );
        assert_eq!(
            rank_adapter(&software(), None, 1),
            None,
            "software is shared"
        );
    }
}
