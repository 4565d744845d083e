//! Compiling WGSL into shader modules and specialising them into pipelines: the runtime checks
//! every kernel is compiled with, and a
//! cache of the pipelines an op has specialised (by module, entry point and override
//! constants, bit for bit).

use std::collections::HashMap;
use std::sync::Mutex;

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

/// The module of `sources` concatenated, compiled with [`runtime_checks`].
pub(crate) fn module(device: &wgpu::Device, label: &str, sources: &[&str]) -> wgpu::ShaderModule {
    let descriptor = wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(sources.concat().into()),
    };
    // SAFETY: `runtime_checks` keeps bounds checks and drops two guards whose conditions every
    // kernel (under `src/gpu/ops/`, `src/optim/`, `src/activation/` and `src/loss/`) meets by
    // construction. Every loop is a counted
    // `for` whose counter rises by a constant to a bound below 2^31 (a dimension, row count or
    // parameter count of buffers that fit a binding) or halves from a constant to zero, so no
    // loop runs forever. Every integer division and modulo is by a nonzero constant or override
    // (tile sizes, workgroup sizes). A new kernel must keep both properties.
    unsafe { device.create_shader_module_trusted(descriptor, runtime_checks()) }
}

/// A specialised pipeline: its module's name, its entry point, and its override constants as
/// bits.
type Key = (&'static str, &'static str, Vec<(&'static str, u64)>);

/// The pipelines of one bind group layout, specialised on first use and shared after: a pack
/// asks for the same kernel for many dispatches (blocks of a split layer, layers of one width),
/// and packs on one context share them.
pub(crate) struct Pipelines {
    device: wgpu::Device,
    layout: wgpu::PipelineLayout,
    cache: Mutex<HashMap<Key, wgpu::ComputePipeline>>,
}

impl Pipelines {
    /// Pipelines whose only bind group (group 0) has `layout`.
    pub fn new(device: &wgpu::Device, label: &str, layout: &wgpu::BindGroupLayout) -> Self {
        Self {
            device: device.clone(),
            layout: device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(label),
                bind_group_layouts: &[Some(layout)],
                immediate_size: 0,
            }),
            cache: Mutex::default(),
        }
    }

    /// The pipeline of entry point `entry` of the module named `name` (compiled by `module`
    /// the first time), with the override `constants`.
    pub fn get(
        &self,
        name: &'static str,
        module: impl FnOnce() -> wgpu::ShaderModule,
        entry: &'static str,
        constants: &[(&'static str, f64)],
    ) -> wgpu::ComputePipeline {
        let key = (
            name,
            entry,
            constants.iter().map(|&(k, v)| (k, v.to_bits())).collect(),
        );
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .entry(key)
            .or_insert_with(|| {
                self.device
                    .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: Some(name),
                        layout: Some(&self.layout),
                        module: &module(),
                        entry_point: Some(entry),
                        compilation_options: wgpu::PipelineCompilationOptions {
                            constants,
                            zero_initialize_workgroup_memory: false,
                        },
                        cache: None,
                    })
            })
            .clone()
    }
}
