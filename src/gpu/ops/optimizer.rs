//! The fused optimizer update (`optimizer.wgsl`, with each optimizer's own WGSL beside its
//! config in `src/optim/`): one kernel per optimizer, every parameter
//! `θ` of a run of models updated from its gradient `g` scaled by the model's clipping scale,
//! `θ ← update(θ, g · clip)`, with the optimizer's state beside it, per the equations of
//! [`crate::optim`]. A gradient or an updated value that is not finite sets the model's
//! non-finite flag in the metrics.

use super::binding::{Binding, BindingSet, read, read_write, uniform};
use super::dispatch::{Dispatch, Grid, KernelKind};
use super::shader::{Pipelines, module};
use crate::gpu::device::Device;
use crate::optim::Optimizer;

/// The skeleton every optimizer's kernel shares: the entry point, the bindings, the chunk.
const COMMON_WGSL: &str = include_str!("optimizer.wgsl");

/// The bindings of the optimizer kernels: the parameters, the gradients, the three state slots
/// (each optimizer's WGSL names and declares those it uses), every model's coefficients, every
/// model's clipping scale, the metrics, and the chunk.
pub(crate) const BINDINGS: [Binding; 9] = [
    read_write("param"),
    read("grad"),
    read_write("state 0"),
    read_write("state 1"),
    read_write("state 2"),
    read("coefficients"),
    read("clip"),
    read_write("metrics"),
    uniform("chunk"),
];

/// The state slot binding `binding` holds, if any.
#[cfg(test)]
pub(crate) fn state_slot(binding: u32) -> Option<usize> {
    (2..5).contains(&binding).then(|| binding as usize - 2)
}

/// Invocations per workgroup (`GROUP` in `common.wgsl`), each updating a vec4.
const GROUP: u32 = 256;

/// The uniform of `common.wgsl`: the first model of the chunk, and the vec4s of each model it
/// binds.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Chunk {
    pub model: u32,
    pub per_model: u32,
    pub _pad: [u32; 2],
}

/// The sources of `optimizer`'s kernel: the skeleton and the optimizer's own WGSL (beside its
/// config in `src/optim/`).
pub(crate) fn sources(optimizer: &Optimizer) -> [&'static str; 2] {
    [COMMON_WGSL, optimizer.rule().wgsl()]
}

/// The optimizer kernels, compiled on first use.
pub(crate) struct OptimizerOp {
    device: wgpu::Device,
    bindings: BindingSet<9>,
    pipelines: Pipelines,
}

impl OptimizerOp {
    /// The layout on `device`; each kernel compiles when first asked for.
    pub fn new(device: &wgpu::Device) -> Self {
        let bindings = BindingSet::new(device, "optimizer", &BINDINGS);
        Self {
            device: device.clone(),
            pipelines: Pipelines::new(device, "optimizer", bindings.layout()),
            bindings,
        }
    }

    /// The update of `models` consecutive models from model `model`, `per_model` elements of
    /// each (a multiple of 4), on `resources` ([`BINDINGS`] but the chunk, whose uniform is made
    /// here).
    pub fn dispatch(
        &self,
        device: &Device,
        optimizer: &Optimizer,
        (model, models, per_model): (usize, usize, u64),
        resources: [wgpu::BindingResource<'_>; 8],
    ) -> Dispatch {
        let chunk = device.buffer(&wgpu::BufferDescriptor {
            label: Some("optimizer chunk"),
            size: std::mem::size_of::<Chunk>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        // The kernels count in vec4s; tensors and chunks start at multiples of 4.
        let words = Chunk {
            model: model as u32,
            per_model: (per_model / 4) as u32,
            _pad: [0; 2],
        };
        device
            .queue
            .write_buffer(&chunk, 0, bytemuck::bytes_of(&words));
        let [param, grad, s0, s1, s2, coefficients, clip, metrics] = resources;
        let name = optimizer.name();
        Dispatch {
            kind: KernelKind::Update,
            pipeline: self.pipelines.get(
                name,
                || module(&self.device, name, &sources(optimizer)),
                "main",
                &[],
            ),
            bind_group: self.bindings.bind([
                param,
                grad,
                s0,
                s1,
                s2,
                coefficients,
                clip,
                metrics,
                chunk.as_entire_binding(),
            ]),
            grid: Grid::Spread {
                per_model: per_model / 4,
                models: models as u32,
                group: GROUP,
            },
        }
    }
}

/// Every optimizer ([`Optimizer::all`]) with every option that adds state or arithmetic on:
/// momentum (Nesterov's for SGD), AMSGrad, the centered variant, weight decay, learning-rate
/// decay and a nonzero starting accumulator, for those that read them.
#[cfg(test)]
pub(crate) fn every_kind() -> Vec<Optimizer> {
    let everything = crate::optim::Hyperparameters {
        momentum: Some(0.5),
        nesterov: Some(true),
        amsgrad: Some(true),
        centered: Some(true),
        weight_decay: Some(0.01),
        lr_decay: Some(0.01),
        initial_accumulator_value: Some(0.1),
        ..Default::default()
    };
    Optimizer::all()
        .iter()
        .map(|o| {
            o.with_hyperparameters(&everything)
                .expect("valid hyperparameters")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::update;
    use crate::gpu::testing::{assert_close, context, random, read, run, storage};
    use crate::optim::MAX_STATE_SLOTS;

    #[test]
    fn two_steps_of_each_optimizer_are_its_cpu_update() {
        let ctx = context();
        let op = OptimizerOp::new(&ctx.device);
        let len = 64;
        for optimizer in every_kind() {
            let name = optimizer.name();
            let mut params = random(1, len, 1).into_raw_vec_and_offset().0;
            let clip = 0.5f32;
            let mut state: [Vec<f32>; MAX_STATE_SLOTS] = Default::default();
            for slot in optimizer.state_slots() {
                state[slot.index] = vec![slot.initial; len];
            }
            let param_buffer = storage(&ctx, &params);
            let state_buffers: Vec<wgpu::Buffer> = state
                .iter()
                .map(|s| storage(&ctx, if s.is_empty() { &[0.0f32][..] } else { s }))
                .collect();
            let (clip_buffer, metrics) = (storage(&ctx, &[clip]), storage(&ctx, &[0u32; 8]));
            for step in 1..=2u64 {
                let grads = random(1, len, 1 + step).into_raw_vec_and_offset().0;
                let coefficients = optimizer.coefficients(step);
                let (grad_buffer, coefficient_buffer) = (
                    storage(&ctx, &grads),
                    storage(&ctx, coefficients.as_bytes()),
                );
                let dispatch = op.dispatch(
                    &ctx,
                    &optimizer,
                    (0, 1, len as u64),
                    [
                        param_buffer.as_entire_binding(),
                        grad_buffer.as_entire_binding(),
                        state_buffers[0].as_entire_binding(),
                        state_buffers[1].as_entire_binding(),
                        state_buffers[2].as_entire_binding(),
                        coefficient_buffer.as_entire_binding(),
                        clip_buffer.as_entire_binding(),
                        metrics.as_entire_binding(),
                    ],
                );
                run(&ctx, &[dispatch], 0, 1);
                assert!(update(
                    &optimizer,
                    &coefficients,
                    clip,
                    &mut params,
                    &grads,
                    &mut state
                ));
            }
            assert_close(name, &read(&ctx, &param_buffer, len), &params);
            for slot in optimizer.state_slots() {
                let got = read(&ctx, &state_buffers[slot.index], len);
                assert_close(&format!("{name} {}", slot.name), &got, &state[slot.index]);
            }
            assert_eq!(
                read(&ctx, &metrics, 8)[3].to_bits(),
                0,
                "{name}: all finite"
            );
        }
    }
}
