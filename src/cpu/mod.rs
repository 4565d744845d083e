//! The CPU reference engine: the same math as the GPU kernels, written plainly with ndarray.

mod loss;
mod matmul;
mod network;
mod optim;

pub use loss::{correct_rows, loss_and_gradient};
pub use matmul::product;
pub use network::{Activations, backward, forward};
pub use optim::lerp;
#[cfg(test)]
pub(crate) use optim::update;

use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use crate::data::Dataset;
use crate::engine::{
    Engine, Metrics, OptimizerState, Setup, check_clip_norm, check_learning_rate,
    check_optimizer_state,
};
use crate::error::{Error, Result};
use crate::loss::Batch;
use crate::model::Parameters;
use crate::optim::MAX_STATE_SLOTS;

/// Trains a model on the CPU; the reference every GPU result is checked against.
#[derive(Debug, Clone)]
pub struct CpuEngine {
    setup: Setup,
    params: Parameters,
    grads: Parameters,
    /// Optimizer state per tensor (in `named_tensors` order), one `Vec` per slot.
    state: Vec<[Vec<f32>; MAX_STATE_SLOTS]>,
    steps: u64,
    last_loss: Option<f32>,
    lr: f64,
    clip: Option<f32>,
    metrics: Metrics,
    resident: Option<Arc<Dataset>>,
}

impl CpuEngine {
    /// An engine training `setup.model` from `params` (validated against the model and the
    /// optimizer's hyperparameters).
    pub fn new(setup: Setup, params: &Parameters) -> Result<Self> {
        setup.optimizer.validate()?;
        params.check_shapes(&setup.model)?;
        let slots = setup.optimizer.state_slots();
        let copy = crate::host_memory::parameter_bytes(&setup.model);
        crate::host_memory::check(&[
            ("parameters", copy),
            ("gradients", copy),
            ("optimizer state", copy.saturating_mul(slots.len() as u64)),
        ])?;
        let state = params
            .named_tensors()
            .iter()
            .map(|t| {
                let mut per_slot: [Vec<f32>; MAX_STATE_SLOTS] = Default::default();
                for slot in &slots {
                    per_slot[slot.index] = vec![slot.initial; t.values.len()];
                }
                per_slot
            })
            .collect();
        Ok(Self {
            lr: setup.optimizer.lr(),
            clip: None,
            metrics: Metrics::default(),
            resident: None,
            grads: Parameters::zeros(&setup.model),
            params: standard_layout(params),
            setup,
            state,
            steps: 0,
            last_loss: None,
        })
    }
}

/// A copy whose arrays are in row-major order, so tensors and their state index alike.
fn standard_layout(params: &Parameters) -> Parameters {
    let mut out = params.clone();
    for layer in &mut out.layers {
        layer.weight = layer.weight.as_standard_layout().into_owned();
    }
    out
}

impl Engine for CpuEngine {
    fn describe(&self) -> String {
        "cpu (ndarray reference)".into()
    }

    fn setup(&self) -> &Setup {
        &self.setup
    }

    fn step(&mut self, batch: &Batch<'_>) -> Result<()> {
        let Setup {
            model,
            loss,
            optimizer,
        } = &self.setup;
        batch.check(model, *loss)?;
        let acts = forward(model, &self.params, batch.features);
        let output = acts.post.last().expect("a model has at least one layer");
        let (value, output_grad) = loss_and_gradient(*loss, output.view(), batch.targets);
        self.metrics.loss_sum += value * batch.rows() as f32;
        self.metrics.rows += batch.rows() as u64;
        self.metrics.correct += correct_rows(*loss, output.view(), batch.targets);
        self.grads = backward(model, &self.params, batch.features, &acts, output_grad);
        self.steps += 1;
        self.last_loss = Some(value);
        let coefficients = optimizer.with_lr(self.lr).coefficients(self.steps);
        let clip = self.clip.map_or(1.0, |max_norm| {
            let squares: f32 = self
                .grads
                .layers
                .iter()
                .flat_map(|l| l.weight.iter().chain(l.bias.iter()))
                .map(|g| g * g)
                .sum();
            (max_norm / (squares.sqrt() + 1e-6)).min(1.0)
        });
        let mut state = self.state.iter_mut();
        for (p, g) in self.params.layers.iter_mut().zip(&self.grads.layers) {
            // The products give row-major gradients; a copy only if some layout ever did not.
            let weight_grads = g.weight.as_standard_layout();
            let weight_state = state.next().expect("one state entry per tensor");
            let weights_finite = optim::update(
                &coefficients,
                clip,
                p.weight.as_slice_mut().expect("row-major weights"),
                weight_grads.as_slice().expect("row-major gradients"),
                weight_state,
            );
            let bias_state = state.next().expect("one state entry per tensor");
            let biases_finite = optim::update(
                &coefficients,
                clip,
                p.bias.as_slice_mut().expect("contiguous biases"),
                g.bias.as_slice().expect("contiguous gradients"),
                bias_state,
            );
            self.metrics.nonfinite |= !(weights_finite && biases_finite);
        }
        Ok(())
    }

    fn last_loss(&mut self) -> Result<f32> {
        self.last_loss.ok_or(Error::NoStepYet)
    }

    fn gradients(&mut self) -> Result<Parameters> {
        Ok(self.grads.clone())
    }

    fn parameters(&mut self) -> Result<Parameters> {
        Ok(self.params.clone())
    }

    fn set_parameters(&mut self, parameters: &Parameters) -> Result<()> {
        parameters.check_shapes(&self.setup.model)?;
        self.params = standard_layout(parameters);
        Ok(())
    }

    fn predict(&mut self, features: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let model = &self.setup.model;
        model.check_features(&features)?;
        let mut acts = forward(model, &self.params, features);
        Ok(acts.post.pop().expect("a model has at least one layer"))
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        check_learning_rate(&self.setup.optimizer, lr)?;
        self.lr = lr;
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_clip_norm(&mut self, max_norm: Option<f32>) -> Result<()> {
        check_clip_norm(max_norm)?;
        self.clip = max_norm;
        Ok(())
    }

    fn take_metrics(&mut self) -> Result<Metrics> {
        Ok(std::mem::take(&mut self.metrics))
    }

    fn evaluate(&mut self, batch: &Batch<'_>) -> Result<Metrics> {
        let Setup { model, loss, .. } = &self.setup;
        batch.check(model, *loss)?;
        let acts = forward(model, &self.params, batch.features);
        let output = acts.post.last().expect("a model has at least one layer");
        let (value, _) = loss_and_gradient(*loss, output.view(), batch.targets);
        Ok(Metrics {
            loss_sum: value * batch.rows() as f32,
            rows: batch.rows() as u64,
            correct: correct_rows(*loss, output.view(), batch.targets),
            nonfinite: false,
        })
    }

    fn optimizer_state(&mut self) -> Result<OptimizerState> {
        let model = &self.setup.model;
        let slots = self
            .setup
            .optimizer
            .state_slots()
            .iter()
            .map(|slot| {
                let mut values = Parameters::zeros(model);
                let tensors = values.layers.iter_mut().flat_map(|l| {
                    [
                        l.weight.iter_mut().collect::<Vec<_>>(),
                        l.bias.iter_mut().collect(),
                    ]
                });
                for (tensor, state) in tensors.zip(&self.state) {
                    for (v, s) in tensor.into_iter().zip(&state[slot.index]) {
                        *v = *s;
                    }
                }
                (slot.name.to_string(), values)
            })
            .collect();
        Ok(OptimizerState {
            steps: self.steps,
            slots,
        })
    }

    fn set_optimizer_state(&mut self, state: &OptimizerState) -> Result<()> {
        check_optimizer_state(&self.setup, state)?;
        for (slot, (_, values)) in self.setup.optimizer.state_slots().iter().zip(&state.slots) {
            for (tensor, saved) in self.state.iter_mut().zip(values.named_tensors()) {
                tensor[slot.index] = saved.values;
            }
        }
        self.steps = state.steps;
        Ok(())
    }

    fn load_resident(&mut self, data: Arc<Dataset>) -> Result<()> {
        self.resident = Some(data);
        Ok(())
    }

    fn step_resident(&mut self, indices: &[u32]) -> Result<()> {
        let data = self.resident.clone().ok_or_else(|| {
            Error::Usage("step_resident needs a dataset: call load_resident first".into())
        })?;
        if let Some(&bad) = indices.iter().find(|&&i| i as usize >= data.rows()) {
            return Err(Error::Usage(format!(
                "row index {bad} is beyond the dataset's {} rows",
                data.rows()
            )));
        }
        let rows: Vec<usize> = indices.iter().map(|&i| i as usize).collect();
        let batch = data.subset(&rows);
        self.step(&Batch::new(batch.features.view(), batch.targets.view()))
    }

    fn synchronize(&mut self) -> Result<()> {
        Ok(())
    }
}
