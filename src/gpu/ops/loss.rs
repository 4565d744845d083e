//! The loss: each row's loss and output gradient, then the batch's mean loss into the metrics
//! (`loss.wgsl`; equations in [`crate::loss`]). With `N(r)` the loss's normalizer over `r`
//! rows ([`Loss::normalizer`]), `ŷ = act(z)` the outputs and `y` the targets:
//!
//! ```text
//! ROW_LOSS[b] = Σ_c ℓ(ŷ_b, y_b)_c            DELTA[b, c] = ∂ℓ/∂ŷ_bc / N(group rows) · act'(z_bc)
//! L = Σ_b ROW_LOSS[b] / N(rows)              METRICS += [L·rows, rows, correct rows, ·, L]
//! ```
//!
//! The group's rows are the batch's own unless the batch is one of a group whose gradients
//! add up into one optimizer step ([`crate::accumulate`]).

use super::binding::{Binding, BindingSet, read, read_write, uniform};
use super::dispatch::{Dispatch, Extent, Grid, KernelKind};
use super::shader::{Pipelines, module};
use crate::loss::Loss;
use crate::model::Activation;

const LOSS_WGSL: &str = include_str!("loss.wgsl");

/// The bindings of `loss.wgsl`: the outputs and pre-activations, the dense and class targets,
/// the output gradient, each row's loss, the shape, each row's correctness, and the metrics.
pub(crate) const BINDINGS: [Binding; 9] = [
    read("output"),
    read("pre"),
    read("dense_targets"),
    read("class_targets"),
    read_write("delta"),
    read_write("row_loss"),
    uniform("dims"),
    read_write("row_correct"),
    read_write("metrics"),
];

/// Words of metrics per model: the loss sum, rows, correct rows, the optimizer's non-finite
/// flag, the last batch's mean loss, and padding.
pub(crate) const METRICS_WORDS: u64 = 8;
/// Where the last batch's mean loss sits among them.
pub(crate) const LAST_LOSS: usize = 4;

/// Invocations per workgroup of `rows` (one per batch row).
const ROW_GROUP: u32 = 64;

/// The uniform of `loss.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct LossDims {
    pub rows: u32,
    pub cols: u32,
    pub class_targets: u32,
    pub _pad: u32,
    /// `N(rows)`: what the batch's summed loss is divided by.
    pub norm: f32,
    /// Elements between consecutive models' outputs (and pre-activations and gradients).
    pub stride_out: u32,
    /// Elements between consecutive models' per-row losses.
    pub stride_rows: u32,
    /// `N(group rows)`: what each row's output gradient is divided by.
    pub grad_norm: f32,
}

/// The loss over a model's outputs, as a function of the batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LossShape {
    pub loss: Loss,
    /// The model's outputs.
    pub cols: usize,
    /// The most rows a batch has: models' buffers are this many rows apart.
    pub max_batch: usize,
}

impl LossShape {
    /// The uniform for a batch of `rows` rows (class indices or dense targets), one of a group
    /// of `group_rows` rows.
    pub fn uniform(&self, rows: u32, class_targets: bool, group_rows: usize) -> LossDims {
        LossDims {
            rows,
            cols: self.cols as u32,
            class_targets: u32::from(class_targets),
            _pad: 0,
            norm: self.loss.normalizer(rows as usize, self.cols),
            stride_out: (self.max_batch * self.cols) as u32,
            stride_rows: self.max_batch as u32,
            grad_norm: self.loss.normalizer(group_rows, self.cols),
        }
    }
}

/// The sources of the module.
pub(crate) fn sources() -> [&'static str; 3] {
    [crate::activation::wgsl(), LOSS_WGSL, crate::loss::wgsl()]
}

/// The compiled loss kernels.
pub(crate) struct LossOp {
    bindings: BindingSet<9>,
    pipelines: Pipelines,
    module: wgpu::ShaderModule,
}

impl LossOp {
    /// Compiles the module on `device`.
    pub fn new(device: &wgpu::Device) -> Self {
        let bindings = BindingSet::new(device, "loss", &BINDINGS);
        Self {
            pipelines: Pipelines::new(device, "loss", bindings.layout()),
            module: module(device, "loss", &sources()),
            bindings,
        }
    }

    /// The two launches of `loss` over an output layer with `activation`, on `resources`
    /// ([`BINDINGS`]): each row's loss and gradient, then the mean into the metrics.
    pub fn dispatches(
        &self,
        loss: Loss,
        activation: Activation,
        resources: [wgpu::BindingResource<'_>; 9],
    ) -> [Dispatch; 2] {
        let id = loss.kernel_index();
        let [act, slope] = activation.kernel_constants();
        let constants = [("LOSS", f64::from(id)), act, slope];
        let bind_group = self.bindings.bind(resources);
        let pipeline = |entry| {
            self.pipelines
                .get("loss", || self.module.clone(), entry, &constants)
        };
        [
            Dispatch {
                kind: KernelKind::Loss,
                pipeline: pipeline("rows"),
                bind_group: bind_group.clone(),
                grid: Grid::Items {
                    count: Extent::Batch,
                    group: ROW_GROUP,
                },
            },
            Dispatch {
                kind: KernelKind::Loss,
                pipeline: pipeline("mean"),
                bind_group,
                grid: Grid::Single,
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;
    use crate::cpu::{correct_rows, loss_and_gradient};
    use crate::gpu::testing::{
        assert_close, classes, context, random, read, run, storage, uniform as uni,
    };
    use crate::loss::TargetsView;

    /// The GPU's output gradient and metrics for `loss` over pre-activations `z` through the
    /// output `activation`, the batch one of a group of `group_rows` rows.
    fn gpu(
        loss: Loss,
        activation: Activation,
        z: &Array2<f32>,
        targets: TargetsView<'_>,
        group_rows: usize,
    ) -> (Vec<f32>, Vec<f32>) {
        let ctx = context();
        let op = LossOp::new(&ctx.device);
        let (rows, cols) = z.dim();
        let output = z.mapv(|v| activation.apply(v));
        let flat = |x: &Array2<f32>| x.iter().copied().collect::<Vec<f32>>();
        let (dense, classes) = match targets {
            TargetsView::Dense(y) => (storage(&ctx, &flat(&y.to_owned())), storage(&ctx, &[0u32])),
            TargetsView::Classes(c) => (storage(&ctx, &[0.0f32]), storage(&ctx, c)),
        };
        let shape = LossShape {
            loss,
            cols,
            max_batch: rows,
        };
        let class_targets = matches!(targets, TargetsView::Classes(_));
        let buffers = [
            storage(&ctx, &flat(&output)),
            storage(&ctx, &flat(z)),
            dense,
            classes,
            storage(&ctx, &vec![0.0f32; rows * cols]),
            storage(&ctx, &vec![0.0f32; rows]),
            uni(&ctx, &shape.uniform(rows as u32, class_targets, group_rows)),
            storage(&ctx, &vec![0u32; rows]),
            storage(&ctx, &[0u32; METRICS_WORDS as usize]),
        ];
        let dispatches = op.dispatches(
            loss,
            activation,
            buffers.each_ref().map(|b| b.as_entire_binding()),
        );
        run(&ctx, &dispatches, rows as u32, 1);
        (
            read(&ctx, &buffers[4], rows * cols),
            read(&ctx, &buffers[8], METRICS_WORDS as usize),
        )
    }

    #[test]
    fn each_loss_is_its_cpu_twin() {
        let (rows, cols) = (10, 3);
        let z = random(rows, cols, 1);
        let dense = random(rows, cols, 2);
        let bits = dense.mapv(|v| f32::from(u8::from(v > 0.0)));
        let labels = classes(rows, cols as u32, 3);
        for loss in Loss::all() {
            // Each loss on the targets it takes: class indices, 0/1 labels or values (the
            // regression loss through a sigmoid output, whose derivative the kernel fuses).
            let (activation, targets) = if loss.takes_class_indices() {
                (Activation::Identity, TargetsView::Classes(&labels))
            } else if loss.classifies() {
                (Activation::Identity, TargetsView::Dense(bits.view()))
            } else {
                (Activation::Sigmoid, TargetsView::Dense(dense.view()))
            };
            // One batch of a group of 25 rows: the gradient is the batch's scaled by
            // N(10) / N(25); the loss is the batch's own mean.
            let (delta, metrics) = gpu(loss, activation, &z, targets, 25);
            let output = z.mapv(|v| activation.apply(v));
            let (mean, gradient) = loss_and_gradient(loss, output.view(), targets);
            let scale = loss.normalizer(rows, cols) / loss.normalizer(25, cols);
            let expected: Vec<f32> = gradient
                .iter()
                .zip(&z)
                .map(|(g, &v)| g * scale * activation.derivative(v))
                .collect();
            let what = format!("{loss:?}");
            assert_close(&format!("{what} output gradient"), &delta, &expected);
            assert_close(&format!("{what} mean loss"), &[metrics[LAST_LOSS]], &[mean]);
            assert_close(
                &format!("{what} loss sum"),
                &[metrics[0]],
                &[mean * rows as f32],
            );
            assert_eq!(metrics[1].to_bits(), rows as u32, "{what} rows");
            let correct = correct_rows(loss, output.view(), targets);
            assert_eq!(
                u64::from(metrics[2].to_bits()),
                correct,
                "{what} correct rows"
            );
        }
    }
}
