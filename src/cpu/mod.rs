//! The CPU reference engine: the same math as the GPU kernels, written plainly with ndarray.

mod loss;
mod network;
mod optim;

pub use loss::loss_and_gradient;
pub use network::{Activations, backward, forward};
pub use optim::lerp;

use ndarray::{Array2, ArrayView2};

use crate::engine::{Engine, Setup};
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
}

impl CpuEngine {
    /// An engine training `setup.model` from `params` (validated against the model and the
    /// optimizer's hyperparameters).
    pub fn new(setup: Setup, params: &Parameters) -> Result<Self> {
        setup.optimizer.validate()?;
        params.check_shapes(&setup.model)?;
        let slots = setup.optimizer.state_slots();
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
        self.grads = backward(model, &self.params, batch.features, &acts, output_grad);
        self.steps += 1;
        self.last_loss = Some(value);
        let coefficients = optimizer.coefficients(self.steps);
        let mut state = self.state.iter_mut();
        for (p, g) in self.params.layers.iter_mut().zip(&self.grads.layers) {
            let weight_state = state.next().expect("one state entry per tensor");
            optim::update(
                &coefficients,
                p.weight.iter_mut(),
                g.weight.iter(),
                weight_state,
            );
            let bias_state = state.next().expect("one state entry per tensor");
            optim::update(&coefficients, p.bias.iter_mut(), g.bias.iter(), bias_state);
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

    fn synchronize(&mut self) -> Result<()> {
        Ok(())
    }
}
