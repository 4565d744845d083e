//! Every adapter wgpu can see, with the limits that decide what downhill can train on it, and
//! the one `--device auto` would use.

use crate::gpu::{AdapterChoice, AdapterRequest, Want, choose_adapter, enumerate_adapters};

/// One adapter and the limits that matter for training.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceReport {
    /// Position in wgpu's enumeration.
    pub index: usize,
    /// Adapter name.
    pub name: String,
    /// Graphics API (`Vulkan`, `Metal`, `Dx12`, `Gl`).
    pub backend: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `VirtualGpu`, `Cpu` or `Other`.
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
    /// Largest buffer, bytes.
    pub max_buffer_size: u64,
    /// Largest storage-buffer binding, bytes: the largest single tensor.
    pub max_storage_binding: u64,
    /// Largest workgroup, invocations per dimension (x, y, z).
    pub max_workgroup_size: [u32; 3],
    /// Most invocations in one workgroup.
    pub max_invocations_per_workgroup: u32,
    /// Workgroup (shared) memory, bytes.
    pub max_workgroup_storage: u32,
    /// Whether GPU timestamps can time passes.
    pub timestamps: bool,
    /// Whether `--device auto` runs on this adapter (at most one does; none when it would run
    /// on the CPU engine).
    pub auto: bool,
    /// Whether `--device gpu` runs on this adapter (the best one, software ones included).
    pub gpu: bool,
}

/// Every adapter on every backend compiled in (or those `WGPU_BACKEND` names), in wgpu's
/// order, the one `--device auto` would use marked (under `WGPU_ADAPTER_NAME` and
/// `WGPU_POWER_PREF`, as the command line reads them).
pub fn list_devices() -> Vec<DeviceReport> {
    let adapters = enumerate_adapters();
    let infos: Vec<_> = adapters.iter().map(wgpu::Adapter::get_info).collect();
    let chosen = |want| match choose_adapter(&infos, &AdapterRequest::from_env(), want) {
        Ok(AdapterChoice::Adapter(i)) => Some(i),
        _ => None,
    };
    let (auto, gpu) = (chosen(Want::HardwareOrCpu), chosen(Want::AnyAdapter));
    adapters
        .iter()
        .enumerate()
        .map(|(index, adapter)| {
            let info = adapter.get_info();
            let limits = adapter.limits();
            DeviceReport {
                index,
                name: info.name,
                backend: format!("{:?}", info.backend),
                device_type: format!("{:?}", info.device_type),
                driver: format!("{} {}", info.driver, info.driver_info)
                    .trim()
                    .to_string(),
                max_buffer_size: limits.max_buffer_size,
                max_storage_binding: limits.max_storage_buffer_binding_size,
                max_workgroup_size: [
                    limits.max_compute_workgroup_size_x,
                    limits.max_compute_workgroup_size_y,
                    limits.max_compute_workgroup_size_z,
                ],
                max_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
                max_workgroup_storage: limits.max_compute_workgroup_storage_size,
                timestamps: adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY),
                auto: auto == Some(index),
                gpu: gpu == Some(index),
            }
        })
        .collect()
}
