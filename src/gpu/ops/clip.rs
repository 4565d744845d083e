//! Clipping by global norm, as `torch.nn.utils.clip_grad_norm_` (`clip.wgsl`): for each model
//! `z` with gradients `g_z`,
//!
//! ```text
//! SCALE[z] = min(1, max_norm / (‖g_z‖₂ + 1e-6))
//! ```
//!
//! which the optimizer multiplies every gradient of model `z` by. The sum of squares is reduced
//! in a fixed order (no float atomics), over one binding of all models' gradients, or, where
//! they do not fit one, in chunks whose partial sums are then added in order.

use super::binding::{Binding, BindingSet, range, read, read_write, uniform};
use super::dispatch::{Dispatch, Grid, KernelKind};
use super::shader::{Pipelines, module};
use crate::error::Result;
use crate::gpu::device::Device;

const CLIP_WGSL: &str = include_str!("clip.wgsl");

/// The bindings of `clip.wgsl`: the gradients (or the partial sums), the scales (or the partial
/// sums), the parameters.
pub(crate) const BINDINGS: [Binding; 3] = [read("grad"), read_write("scale"), uniform("params")];

/// The uniform of `clip.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct ClipParams {
    /// `main`: gradients per model; `partial_sums`: elements in the chunk;
    /// `scale_from_partials`: chunks per model.
    pub count: u32,
    /// The largest norm let through.
    pub max_norm: f32,
    /// `main`: elements between models; `partial_sums`: where the chunk's sum goes.
    pub stride: u32,
    pub _pad: u32,
}

/// The sources of the module.
pub(crate) fn sources() -> [&'static str; 1] {
    [CLIP_WGSL]
}

/// The compiled clipping kernels.
pub(crate) struct ClipOp {
    bindings: BindingSet<3>,
    pipelines: Pipelines,
    module: wgpu::ShaderModule,
}

impl ClipOp {
    /// Compiles the module on `device`.
    pub fn new(device: &wgpu::Device) -> Self {
        let bindings = BindingSet::new(device, "gradient clipping", &BINDINGS);
        Self {
            pipelines: Pipelines::new(device, "gradient clipping", bindings.layout()),
            module: module(device, "clip", &sources()),
            bindings,
        }
    }

    fn pipeline(&self, entry: &'static str) -> wgpu::ComputePipeline {
        self.pipelines
            .get("clip", || self.module.clone(), entry, &[])
    }

    /// The launch that clips every model's gradients, all in one binding `resources[0]`,
    /// `params.stride` elements apart, writing each model's scale ([`BINDINGS`]; the parameters
    /// must hold `count` = gradients per model, `stride` = elements between models).
    pub fn dispatch(&self, resources: [wgpu::BindingResource<'_>; 3]) -> Dispatch {
        Dispatch {
            kind: KernelKind::Clip,
            pipeline: self.pipeline("main"),
            bind_group: self.bindings.bind(resources),
            grid: Grid::Single,
        }
    }

    /// The launches that clip gradients too large for one binding: each of `models` models'
    /// `per_model` gradients in `grads` (`per_model` apart) cut into chunks of at most `binding`
    /// elements starting at multiples of `align`, one launch per chunk for its sum of squares,
    /// then one for every model's scale into `scale`.
    pub fn chunked(
        &self,
        device: &Device,
        grads: &wgpu::Buffer,
        scale: &wgpu::Buffer,
        (models, per_model): (u64, u64),
        (binding, align): (u64, u64),
        max_norm: f32,
    ) -> Result<Vec<Dispatch>> {
        let chunk = binding / align * align;
        let chunks = per_model.div_ceil(chunk);
        let partials = device.storage_buffer(
            "gradient clipping partial sums",
            models * chunks * 4,
            wgpu::BufferUsages::empty(),
            "turn gradient clipping off or use narrower layers",
        )?;
        let params = |params: ClipParams| {
            let buffer = device.buffer(&wgpu::BufferDescriptor {
                label: Some("gradient clipping chunk"),
                size: std::mem::size_of::<ClipParams>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            device
                .queue
                .write_buffer(&buffer, 0, bytemuck::bytes_of(&params));
            buffer
        };
        let mut dispatches = Vec::new();
        for model in 0..models {
            for c in 0..chunks {
                let start = c * chunk;
                let len = chunk.min(per_model - start);
                let uniform = params(ClipParams {
                    count: len as u32,
                    max_norm,
                    stride: (model * chunks + c) as u32,
                    _pad: 0,
                });
                dispatches.push(Dispatch {
                    kind: KernelKind::Clip,
                    pipeline: self.pipeline("partial_sums"),
                    bind_group: self.bindings.bind([
                        range(grads, model * per_model + start, len),
                        partials.as_entire_binding(),
                        uniform.as_entire_binding(),
                    ]),
                    grid: Grid::Once,
                });
            }
        }
        let uniform = params(ClipParams {
            count: chunks as u32,
            max_norm,
            stride: 0,
            _pad: 0,
        });
        dispatches.push(Dispatch {
            kind: KernelKind::Clip,
            pipeline: self.pipeline("scale_from_partials"),
            bind_group: self.bindings.bind([
                partials.as_entire_binding(),
                scale.as_entire_binding(),
                uniform.as_entire_binding(),
            ]),
            grid: Grid::Single,
        });
        device.check_errors("preparing gradient clipping")?;
        Ok(dispatches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::testing::{assert_close, context, random, read, run, storage, uniform};

    #[test]
    fn each_models_scale_is_the_clipping_formula() {
        let ctx = context();
        let op = ClipOp::new(&ctx.device);
        // Two models of 320 gradients (bound at multiples of 64 elements, 256 bytes): one
        // clipped (norm about 17), one not (about 0.2).
        let mut grads = random(1, 640, 1).into_raw_vec_and_offset().0;
        for g in &mut grads[..320] {
            *g *= 1.7;
        }
        for g in &mut grads[320..] {
            *g *= 0.017;
        }
        let max_norm = 1.5;
        let expected: Vec<f32> = grads
            .chunks(320)
            .map(|g| {
                let norm = g.iter().map(|v| v * v).sum::<f32>().sqrt();
                (max_norm / (norm + 1e-6)).min(1.0)
            })
            .collect();
        assert!(expected[0] < 1.0 && expected[1] == 1.0);
        let buffer = storage(&ctx, &grads);
        let scale = storage(&ctx, &[0.0f32; 2]);
        let params = uniform(
            &ctx,
            &ClipParams {
                count: 320,
                max_norm,
                stride: 320,
                _pad: 0,
            },
        );
        let whole = op.dispatch([
            buffer.as_entire_binding(),
            scale.as_entire_binding(),
            params.as_entire_binding(),
        ]);
        run(&ctx, &[whole], 0, 2);
        assert_close("scale", &read(&ctx, &scale, 2), &expected);
        // The same in chunks of at most 64 elements.
        let scale = storage(&ctx, &[0.0f32; 2]);
        let chunked = op
            .chunked(&ctx, &buffer, &scale, (2, 320), (64, 4), max_norm)
            .expect("room for the partial sums");
        assert_eq!(chunked.len(), 2 * 5 + 1);
        run(&ctx, &chunked, 0, 2);
        assert_close("chunked scale", &read(&ctx, &scale, 2), &expected);
    }
}
