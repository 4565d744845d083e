//! Buffer layouts: all parameters (and, alike, gradients and optimizer state) live in one flat
//! buffer with each tensor at an offset the device can bind, so one optimizer dispatch covers
//! them all; per-dispatch shape uniforms live in one block rewritten only when shapes change.

use std::num::NonZeroU64;

use super::device::Device;
use crate::model::{ModelSpec, Parameters};

/// Where one tensor sits in a flat buffer, in f32 elements.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TensorSlice {
    pub name: String,
    pub offset: u64,
    pub len: u64,
}

/// The flat layout of a model's trained tensors (or, [`FlatLayout::buffers`], of its buffers),
/// in the model's order ([`ModelSpec::tensors`]: `layers.0.weight`, `layers.0.bias`,
/// `layers.1.weight`, ...), each starting at a multiple of the device's storage offset
/// alignment; the gaps are zero and stay zero under every optimizer (zero gradient, zero state).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FlatLayout {
    tensors: Vec<TensorSlice>,
    /// Total elements, a multiple of the alignment.
    pub total: u64,
    /// Alignment in elements.
    pub align: u64,
}

impl FlatLayout {
    /// Lays out `spec`'s trained tensors (its parameters) with offsets aligned to `align_bytes`.
    pub fn new(spec: &ModelSpec, align_bytes: u64) -> Self {
        Self::of(spec, align_bytes, true)
    }

    /// Lays out `spec`'s buffers (batch norm's running statistics) alike.
    pub fn buffers(spec: &ModelSpec, align_bytes: u64) -> Self {
        Self::of(spec, align_bytes, false)
    }

    /// Lays out the tensors of `spec` whose `trained` is `trained`.
    fn of(spec: &ModelSpec, align_bytes: u64, trained: bool) -> Self {
        // At least 4 elements, so that the optimizer kernels can update vec4s.
        let align = (align_bytes / 4).max(4);
        let mut end = 0u64;
        let tensors = spec
            .tensors()
            .into_iter()
            .filter(|t| t.trained == trained)
            .map(|t| {
                let offset = end.next_multiple_of(align);
                let len = t.len() as u64;
                end = offset + len;
                TensorSlice {
                    name: t.name,
                    offset,
                    len,
                }
            })
            .collect();
        Self {
            tensors,
            total: end.next_multiple_of(align),
            align,
        }
    }

    /// The tensor named `name` (one of those laid out).
    pub fn tensor(&self, name: &str) -> &TensorSlice {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .expect("every tensor of the model is laid out")
    }

    /// Every tensor in order.
    pub fn tensors(&self) -> impl Iterator<Item = &TensorSlice> {
        self.tensors.iter()
    }

    /// The laid-out tensors of `params` packed into one zero-padded vector.
    pub fn pack(&self, params: &Parameters) -> Vec<f32> {
        let mut flat = vec![0.0; self.total as usize];
        for slice in self.tensors() {
            let tensor = params
                .tensor(&slice.name)
                .expect("parameters checked against the model");
            let start = slice.offset as usize;
            flat[start..start + tensor.values.len()].copy_from_slice(&tensor.values);
        }
        flat
    }

    /// The inverse of [`FlatLayout::pack`]: the model's tensors, those laid out read from
    /// `flat`, the others zero.
    pub fn unpack(&self, flat: &[f32], spec: &ModelSpec) -> Parameters {
        let mut params = Parameters::zeros(spec);
        self.fill(flat, &mut params);
        params
    }

    /// Writes the laid-out tensors' values from `flat` into `params`.
    pub fn fill(&self, flat: &[f32], params: &mut Parameters) {
        for slice in self.tensors() {
            let values = &flat[slice.offset as usize..(slice.offset + slice.len) as usize];
            params
                .tensor_mut(&slice.name)
                .expect("a tensor of the model")
                .copy_from_slice(values);
        }
    }

    /// Splits the elements `start..end` (`start` aligned) into ranges of at most `max_bytes`
    /// that start at aligned offsets, as `(offset, len)`.
    pub fn chunks(&self, (start, end): (u64, u64), max_bytes: u64) -> Vec<(u64, u64)> {
        let step = ((max_bytes / 4) / self.align * self.align).max(self.align);
        (start..end)
            .step_by(step as usize)
            .map(|offset| (offset, step.min(end - offset)))
            .collect()
    }
}

/// One uniform buffer holding many small uniform blocks at aligned offsets, mirrored on the
/// host so that all of them are uploaded with a single write.
pub(crate) struct UniformBlock {
    pub buffer: wgpu::Buffer,
    stride: u64,
    host: Vec<u8>,
}

impl UniformBlock {
    /// Room for `slots` blocks of at most `slot_bytes` each, `align` bytes apart at least.
    pub fn new(device: &Device, label: &str, slots: usize, slot_bytes: u64, align: u64) -> Self {
        let stride = slot_bytes.next_multiple_of(align);
        let size = stride * slots.max(1) as u64;
        Self {
            buffer: device.buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            stride,
            host: vec![0; size as usize],
        }
    }

    /// Sets block `slot` on the host copy.
    pub fn set(&mut self, slot: usize, bytes: &[u8]) {
        let start = slot * self.stride as usize;
        self.host[start..start + bytes.len()].copy_from_slice(bytes);
    }

    /// Uploads every block.
    pub fn upload(&self, queue: &wgpu::Queue) {
        queue.write_buffer(&self.buffer, 0, &self.host);
    }

    /// The binding of block `slot`, `bytes` long.
    pub fn binding(&self, slot: usize, bytes: u64) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: slot as u64 * self.stride,
            size: NonZeroU64::new(bytes),
        })
    }
}
