//! An open device and what it offers every engine: its queue, the adapter it was opened on and
//! its limits, buffers created against those limits and counted, error capture, and blocking
//! read-backs. A leaf: nothing here knows of kernels or of how matmul tiles are chosen.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// An open wgpu device with its queue and the adapter it runs on; cheap to clone, every clone
/// the same device. A [`GpuContext`](super::GpuContext) is one of these with the kernels and
/// the tuner that run on it, and reaches its methods through `Deref`.
#[derive(Clone)]
pub struct Device {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    /// Errors wgpu reported outside an error scope (validation, out of memory).
    errors: Arc<Mutex<Vec<String>>>,
    /// Why the device was lost, once it has been: every later call fails with it.
    lost: Arc<Mutex<Option<String>>>,
    /// Bytes of every buffer created through [`Device::buffer`], summed.
    allocated: Arc<AtomicU64>,
    /// The largest device-local memory heap, where the API reports it.
    device_memory: Option<u64>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("adapter", &self.describe())
            .finish_non_exhaustive()
    }
}

/// The size of the largest device-local memory heap of a Vulkan adapter; `None` on other APIs.
#[cfg(any(target_os = "linux", target_os = "windows", target_os = "android"))]
fn device_local_memory(adapter: &wgpu::Adapter) -> Option<u64> {
    use ash::vk;
    // SAFETY: the returned guard borrows the live adapter only for the query below, which reads
    // properties of its physical device through the instance that enumerated it.
    let hal = unsafe { adapter.as_hal::<wgpu::hal::api::Vulkan>() }?;
    let instance = hal.shared_instance().raw_instance();
    // SAFETY: `raw_physical_device` belongs to `instance`, which outlives this call.
    let properties =
        unsafe { instance.get_physical_device_memory_properties(hal.raw_physical_device()) };
    properties
        .memory_heaps_as_slice()
        .iter()
        .filter(|heap| heap.flags.contains(vk::MemoryHeapFlags::DEVICE_LOCAL))
        .map(|heap| heap.size)
        .max()
}

#[cfg(not(any(target_os = "linux", target_os = "windows", target_os = "android")))]
fn device_local_memory(_adapter: &wgpu::Adapter) -> Option<u64> {
    None
}

/// The optional features the engine uses where the adapter has them: timestamp queries (GPU
/// time in benchmarks) and subgroups of at least 8 invocations (the shuffle matmul).
fn wanted_features(info: &wgpu::AdapterInfo) -> wgpu::Features {
    let mut features = wgpu::Features::TIMESTAMP_QUERY;
    if info.subgroup_min_size >= 8 {
        features |= wgpu::Features::SUBGROUP;
    }
    features
}

impl Device {
    /// Opens `adapter` with `limits` (the adapter's full limits when `None`), planning within
    /// `device_memory` bytes (else the adapter's largest device-local heap, where reported).
    pub(crate) fn open(
        adapter: wgpu::Adapter,
        limits: Option<wgpu::Limits>,
        device_memory: Option<u64>,
    ) -> Result<Self> {
        let info = adapter.get_info();
        let device_memory = device_memory.or_else(|| device_local_memory(&adapter));
        let required_limits = limits.unwrap_or_else(|| adapter.limits());
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("downhill"),
            required_limits,
            required_features: adapter.features() & wanted_features(&info),
            ..Default::default()
        }))
        .map_err(|e| Error::RequestDevice {
            adapter: info.name.clone(),
            message: e.to_string(),
        })?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&errors);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut errors) = sink.lock() {
                errors.push(e.to_string());
            }
        }));
        let lost = Arc::new(Mutex::new(None));
        let sink = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut lost) = sink.lock() {
                let detail = if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                };
                *lost = Some(format!("the GPU device was lost ({reason:?}{detail})"));
            }
        });
        let limits = device.limits();
        Ok(Self {
            device,
            queue,
            info,
            limits,
            errors,
            lost,
            allocated: Arc::new(AtomicU64::new(0)),
            device_memory,
        })
    }

    /// Bytes of device memory to plan within:
    /// [`AdapterRequest::device_memory`](super::AdapterRequest::device_memory), else the
    /// adapter's largest device-local memory heap where the API reports it (Vulkan); what
    /// [`MemoryEstimate`](super::MemoryEstimate)s are checked against.
    pub fn device_memory(&self) -> Option<u64> {
        self.device_memory
    }

    /// Whether the matmul kernels that share rows through subgroup shuffles run here: the device
    /// has subgroups of at least 8 invocations.
    pub fn has_shuffles(&self) -> bool {
        self.device.features().contains(wgpu::Features::SUBGROUP)
    }

    /// Creates a buffer, counting its bytes in [`Device::allocated_bytes`].
    pub(crate) fn buffer(&self, descriptor: &wgpu::BufferDescriptor<'_>) -> wgpu::Buffer {
        self.allocated.fetch_add(descriptor.size, Ordering::Relaxed);
        self.device.create_buffer(descriptor)
    }

    /// Takes `bytes` of buffers since dropped back out of [`Device::allocated_bytes`] (the
    /// tuner's scratch products, which are no engine's memory).
    pub(crate) fn released(&self, bytes: u64) {
        self.allocated.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Bytes of device memory the engines on this device have allocated (readback staging
    /// excluded), so that a benchmark can report what a model and batch size cost.
    pub fn allocated_bytes(&self) -> u64 {
        self.allocated.load(Ordering::Relaxed)
    }

    /// The wgpu device, for code that shares it (its own buffers and passes beside downhill's).
    /// Destroying it loses the device for every engine on it: their calls then return
    /// [`Error::Gpu`] instead of running.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// Whether GPU timestamps can time passes on this device.
    pub fn supports_timestamps(&self) -> bool {
        self.device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// The adapter's name, backend, type and driver.
    pub fn info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// The limits the device was opened with.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// `name (backend, device type, driver)`.
    pub fn describe(&self) -> String {
        let i = &self.info;
        let driver = if i.driver_info.is_empty() {
            i.driver.clone()
        } else {
            format!("{} {}", i.driver, i.driver_info)
        };
        format!(
            "{} ({:?}, {:?}, {})",
            i.name,
            i.backend,
            i.device_type,
            driver.trim()
        )
    }

    /// Returns the errors wgpu reported since the last call, as [`Error::Gpu`], and fails every
    /// call once the device is lost.
    pub(crate) fn check_errors(&self, context: &str) -> Result<()> {
        let lost = self
            .lost
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        if let Some(lost) = lost {
            return Err(Error::Gpu {
                context: context.to_string(),
                message: format!(
                    "{lost}; nothing more can run on it (the driver may have reset or the GPU \
                     was removed): start again, with --resume from the last training-state \
                     checkpoint if one was written"
                ),
            });
        }
        let mut errors = self
            .errors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if errors.is_empty() {
            return Ok(());
        }
        let message = errors.drain(..).collect::<Vec<_>>().join("; ");
        Err(Error::Gpu {
            context: context.to_string(),
            message,
        })
    }

    /// Runs `body` inside validation and out-of-memory error scopes and reports what they caught.
    pub(crate) fn scoped<T>(&self, context: &str, body: impl FnOnce() -> Result<T>) -> Result<T> {
        self.check_errors(context)?;
        let before = self.allocated_bytes();
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = body();
        let requested = self.allocated_bytes().saturating_sub(before);
        let caught = [
            pollster::block_on(validation.pop()),
            pollster::block_on(oom.pop()),
        ];
        let value = value?;
        if let Some(e) = caught.into_iter().flatten().next() {
            let hint = match e {
                wgpu::Error::OutOfMemory { .. } => format!(
                    "; the device is out of memory ({:.1} MiB of buffers were being allocated, \
                     {:.1} MiB before): use a smaller batch or narrower layers, stream the data \
                     (--residency streamed), or close other programs using the GPU",
                    requested as f64 / 1048576.0,
                    before as f64 / 1048576.0
                ),
                _ => String::new(),
            };
            return Err(Error::Gpu {
                context: context.to_string(),
                message: format!("{e}{hint}"),
            });
        }
        Ok(value)
    }

    /// Checks that a buffer of `bytes` for `tensor` fits the device (`hint` says what to do if
    /// not): under `max_buffer_size`, and under `max_storage_buffer_binding_size` when it is
    /// bound whole.
    pub(crate) fn check_fits(
        &self,
        tensor: &str,
        bytes: u64,
        bound_whole: bool,
        hint: &'static str,
    ) -> Result<()> {
        check_fits(&self.limits, tensor, bytes, bound_whole, hint)
    }

    /// Creates a storage buffer of `bytes` (at least 16) for `tensor`, after checking the limits
    /// (`hint` says what to do when it does not fit).
    pub(crate) fn storage_buffer(
        &self,
        tensor: &str,
        bytes: u64,
        usage: wgpu::BufferUsages,
        hint: &'static str,
    ) -> Result<wgpu::Buffer> {
        self.check_fits(tensor, bytes, true, hint)?;
        Ok(self.buffer(&wgpu::BufferDescriptor {
            label: Some(tensor),
            size: bytes.max(16).next_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT),
            usage: wgpu::BufferUsages::STORAGE | usage,
            mapped_at_creation: false,
        }))
    }

    /// Blocks until all submitted work has finished, then reports any error it raised.
    pub(crate) fn wait(&self, context: &str) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu {
                context: context.to_string(),
                message: e.to_string(),
            })?;
        self.check_errors(context)
    }

    /// Copies `bytes` bytes from `offset` of `buffer` to the host as f32, waiting for all work.
    pub(crate) fn read_back(
        &self,
        buffer: &wgpu::Buffer,
        offset: u64,
        bytes: u64,
        what: &str,
    ) -> Result<Vec<f32>> {
        let raw = self.read_back_bytes(buffer, offset, bytes, what)?;
        Ok(bytemuck::pod_collect_to_vec::<u8, f32>(&raw))
    }

    /// Copies `bytes` bytes from `offset` of `buffer` to the host, waiting for all queued work.
    pub(crate) fn read_back_bytes(
        &self,
        buffer: &wgpu::Buffer,
        offset: u64,
        bytes: u64,
        what: &str,
    ) -> Result<Vec<u8>> {
        let context = format!("reading {what} back from the GPU");
        self.check_errors(&context)?;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, offset, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
        staging.map_async(wgpu::MapMode::Read, .., move |result| {
            sender.send(result).ok();
        });
        self.wait(&context)?;
        let mapped = pollster::block_on(receiver.receive());
        match mapped {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                return Err(Error::Gpu {
                    context,
                    message: e.to_string(),
                });
            }
            None => {
                return Err(Error::Gpu {
                    context,
                    message: "the map request was dropped".into(),
                });
            }
        }
        let values = {
            let view = staging.get_mapped_range(..).map_err(|e| Error::Gpu {
                context: context.clone(),
                message: e.to_string(),
            })?;
            view.to_vec()
        };
        staging.unmap();
        Ok(values)
    }
}

/// Checks that a buffer of `bytes` for `tensor` fits `limits` (`hint` says what to do if not):
/// under `max_buffer_size`, and under `max_storage_buffer_binding_size` when it is bound whole.
pub fn check_fits(
    limits: &wgpu::Limits,
    tensor: &str,
    bytes: u64,
    bound_whole: bool,
    hint: &'static str,
) -> Result<()> {
    let too_large = |limit_name, limit| Error::BufferTooLarge {
        tensor: tensor.to_string(),
        bytes,
        limit_name,
        limit,
        hint,
    };
    if bytes > limits.max_buffer_size {
        return Err(too_large("max_buffer_size", limits.max_buffer_size));
    }
    let binding = limits.max_storage_buffer_binding_size;
    if bound_whole && bytes > binding {
        return Err(too_large("max_storage_buffer_binding_size", binding));
    }
    Ok(())
}
