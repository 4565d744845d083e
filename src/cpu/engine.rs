//! The CPU reference engine: K models of one architecture, each trained with the plain math of
//! [`super::forward`], [`super::backward`] and the optimizer updates, one model after another.

use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use super::loss::{correct_rows, loss_and_gradient, loss_and_group_gradient};
use super::matmul::threaded;
use super::network::{backward_each, forward, forward_training, update_running_statistics};
use super::optim;
use crate::accumulate::Part;
use crate::data::Dataset;
use crate::data::scheduler::Source;
use crate::engine::{
    Engine, Metrics, OptimizerState, PackSetup, Setup, check_clip_norm, check_learning_rates,
    check_model, check_optimizer_state, check_training_rows,
};
use crate::error::{Error, Result};
use crate::gradient_buckets::{GradientSink, check_open, fill_trained, hand_over_model};
use crate::loss::Batch;
use crate::model::{MaskKey, Parameters};
use crate::optim::MAX_STATE_SLOTS;

/// One model's tensors and bookkeeping.
#[derive(Debug, Clone)]
struct CpuModel {
    params: Parameters,
    /// The gradients accumulated over the current group of mini-batches.
    grads: Parameters,
    /// Optimizer state per tensor (in `named_tensors` order), one `Vec` per slot.
    state: Vec<[Vec<f32>; MAX_STATE_SLOTS]>,
    /// Whether the optimizer trains each tensor (else it is a buffer), in the same order.
    trained: Vec<bool>,
    lr: f64,
    metrics: Metrics,
    last_loss: Option<f32>,
    frozen: bool,
}

/// Trains K ≥ 1 models on the CPU; the reference every GPU result is checked against.
#[derive(Debug, Clone)]
pub struct CpuEngine {
    setups: Vec<Setup>,
    models: Vec<CpuModel>,
    steps: u64,
    /// The seed dropout's masks are keyed by.
    mask_seed: u64,
    clip: Option<f32>,
    resident: Option<Arc<Dataset>>,
}

impl CpuEngine {
    /// An engine training one model, `setup.model`, from `params` (validated against the model
    /// and the optimizer's hyperparameters).
    pub fn new(setup: Setup, params: &Parameters) -> Result<Self> {
        Self::pack(&PackSetup::one(setup, params))
    }

    /// An engine training every member of `setup`, one after another on the same batches.
    pub fn pack(setup: &PackSetup) -> Result<Self> {
        setup.validate()?;
        let count = setup.members.len() as u64;
        let one = crate::host_memory::parameter_bytes(&setup.model);
        let copy = one.saturating_mul(count);
        // Each model keeps the state slots its own hyperparameters use.
        let slots: u64 = setup
            .members
            .iter()
            .map(|m| m.optimizer.state_slots().len() as u64)
            .sum();
        crate::host_memory::check(&[
            ("parameters", copy),
            ("gradients", copy),
            ("optimizer state", one.saturating_mul(slots)),
        ])?;
        let models = setup
            .members
            .iter()
            .map(|member| {
                let trained: Vec<bool> = setup.model.tensors().iter().map(|t| t.trained).collect();
                // Buffers (running statistics) have no optimizer state: zeros, as on the GPU.
                let state = member
                    .parameters
                    .named_tensors()
                    .iter()
                    .zip(&trained)
                    .map(|(t, &trained)| {
                        let mut per_slot: [Vec<f32>; MAX_STATE_SLOTS] = Default::default();
                        for slot in member.optimizer.state_slots() {
                            let initial = if trained { slot.initial } else { 0.0 };
                            per_slot[slot.index] = vec![initial; t.values.len()];
                        }
                        per_slot
                    })
                    .collect();
                CpuModel {
                    trained,
                    params: member.parameters.clone(),
                    grads: Parameters::zeros(&setup.model),
                    state,
                    lr: member.optimizer.lr(),
                    metrics: Metrics::default(),
                    last_loss: None,
                    frozen: false,
                }
            })
            .collect();
        Ok(Self {
            setups: (0..setup.members.len()).map(|k| setup.setup(k)).collect(),
            models,
            steps: 0,
            mask_seed: 0,
            clip: None,
            resident: None,
        })
    }

    /// Model 0's setup, whose architecture and loss every model shares.
    fn first(&self) -> &Setup {
        &self.setups[0]
    }

    /// The optimizer update of every model that is not frozen, and the step count.
    fn update(&mut self) {
        self.steps += 1;
        for (model, setup) in self.models.iter_mut().zip(&self.setups) {
            if !model.frozen {
                model.update(setup, self.steps, self.clip);
            }
        }
    }
}

impl CpuModel {
    /// `θ ← update(θ, clip(g))` with the optimizer's coefficients of step `step`.
    fn update(&mut self, setup: &Setup, step: u64, clip: Option<f32>) {
        let optimizer = setup.optimizer.with_lr(self.lr);
        let coefficients = optimizer.coefficients(step);
        let grads = self.grads.tensor_values();
        let clip = clip.map_or(1.0, |max_norm| {
            let squares: f32 = grads.iter().flat_map(|g| g.iter()).map(|g| g * g).sum();
            (max_norm / (squares.sqrt() + 1e-6)).min(1.0)
        });
        debug_assert_eq!(grads.len(), self.state.len(), "one state entry per tensor");
        let mut finite = true;
        let tensors = self.params.tensors_mut().zip(&self.trained);
        for (((_, params), &trained), (grads, state)) in
            tensors.zip(grads.iter().zip(self.state.iter_mut()))
        {
            // Buffers (running statistics) are the forward pass's, not the optimizer's.
            if trained {
                finite &= optim::update(&optimizer, &coefficients, clip, params, grads, state);
            }
        }
        self.metrics.nonfinite |= !finite;
    }

    /// Forward, loss and backward on `batch`, the gradients replacing (first of a group) or
    /// adding to the accumulated ones layer by layer; with a `sink`, each bucket of this model
    /// (model `k`) is handed over as soon as its lowest layer is done.
    fn accumulate(
        &mut self,
        setup: &Setup,
        batch: &Batch<'_>,
        part: Part,
        key: &MaskKey<'_>,
        mut sink: Option<(usize, &mut dyn GradientSink)>,
    ) -> Result<()> {
        let acts = forward_training(&setup.model, &self.params, batch.features, key);
        let output = acts.post.last().expect("a model has at least one layer");
        let (value, output_grad) =
            loss_and_group_gradient(setup.loss, output.view(), batch.targets, part.group_rows);
        self.metrics.loss_sum += value * batch.rows() as f32;
        self.metrics.rows += batch.rows() as u64;
        self.metrics.correct += correct_rows(setup.loss, output.view(), batch.targets);
        self.last_loss = Some(value);
        let layers = setup.model.layers();
        let grads = &mut self.grads;
        let mut handed = Ok(());
        backward_each(
            &setup.model,
            &self.params,
            batch.features,
            &acts,
            output_grad,
            |i, layer_grads| {
                let first: usize = layers[..i].iter().map(|l| l.tensor_count()).sum();
                if part.first {
                    for (t, g) in (first..).zip(layer_grads) {
                        grads.replace_values(t, g);
                    }
                } else {
                    for ((_, sum), g) in grads.tensors_mut().skip(first).zip(&layer_grads) {
                        sum.iter_mut().zip(g).for_each(|(s, g)| *s += g);
                    }
                }
                if let Some((k, sink)) = &mut sink
                    && let Some(b) = sink.buckets().closed_by(i)
                    && handed.is_ok()
                {
                    let tensors = grads.named_tensors();
                    handed = sink.ready(*k, b, &|t| tensors[t].values.as_slice());
                }
            },
        );
        if setup.model.has_running_statistics() {
            update_running_statistics(&setup.model, &mut self.params, &acts, batch.rows());
            let passes = self.params.batches_tracked() + 1;
            self.params.set_batches_tracked(passes);
        }
        handed
    }
}

impl CpuEngine {
    /// Whether a call over `rows` rows (1 for an update alone) runs on the pool's threads
    /// ([`on_pool`]): when its work, `rows × parameters × models` multiply-adds (a forward
    /// pass's products), is enough for gemm to thread a product of that size. Below it the
    /// products run on one thread anyway, and handing the call to the pool costs more than it
    /// saves: the default 64-64-10 MLP at batch 32 trained at 0.6-0.8× the speed on the pool.
    fn pooled(&self, rows: usize) -> bool {
        let parameters = self.first().model.parameter_count() * self.models.len();
        threaded(rows.saturating_mul(parameters))
    }

    /// [`Engine::accumulate`], handing each model's buckets to `sink` when there is one.
    fn accumulate_with(
        &mut self,
        batch: &Batch<'_>,
        part: Part,
        mut sink: Option<&mut dyn GradientSink>,
    ) -> Result<()> {
        let first = self.first();
        batch.check(&first.model, first.loss)?;
        check_training_rows(&first.model, batch.rows())?;
        part.check(batch.rows())?;
        if sink.is_some() {
            check_open(part)?;
        }
        let key = MaskKey {
            seed: self.mask_seed,
            step: self.steps,
            rows: batch.rows_in_dataset,
        };
        for (k, (model, setup)) in self.models.iter_mut().zip(&self.setups).enumerate() {
            if !model.frozen {
                let sink: Option<(usize, &mut dyn GradientSink)> = match sink.as_deref_mut() {
                    Some(s) => Some((k, s)),
                    None => None,
                };
                model.accumulate(setup, batch, part, &key, sink)?;
            } else if let Some(sink) = sink.as_deref_mut() {
                // A frozen model's gradients stay as they were: handed over as they stand.
                let tensors = model.grads.named_tensors();
                hand_over_model(sink, k, &|t| tensors[t].values.as_slice())?;
            }
        }
        if part.last {
            self.update();
        }
        Ok(())
    }

    /// The rows `indices` of the resident dataset as a batch of their own.
    fn resident_rows(&self, indices: &[u32]) -> Result<Dataset> {
        let data = self.resident.as_ref().ok_or_else(|| {
            Error::Usage(
                "training on resident rows needs a dataset: call load_resident first".into(),
            )
        })?;
        if let Some(&bad) = indices.iter().find(|&&i| i as usize >= data.rows()) {
            return Err(Error::Usage(format!(
                "row index {bad} is beyond the dataset's {} rows",
                data.rows()
            )));
        }
        let mut features = Array2::zeros((0, 0));
        let targets = data.gather(indices, &mut features)?;
        Dataset::new(data.name.clone(), features, targets)
    }
}

impl Engine for CpuEngine {
    fn describe(&self) -> String {
        match self.models.len() {
            1 => "cpu (ndarray reference)".into(),
            n => format!("cpu (ndarray reference), {n} models one after another"),
        }
    }

    fn models(&self) -> usize {
        self.models.len()
    }

    fn setup(&self, k: usize) -> Setup {
        self.setups[k].clone()
    }

    fn accumulate(&mut self, batch: &Batch<'_>, part: Part) -> Result<()> {
        let pooled = self.pooled(batch.rows());
        on_pool(pooled, || self.accumulate_with(batch, part, None))
    }

    fn accumulate_resident(&mut self, indices: &[u32], part: Part) -> Result<()> {
        on_pool(self.pooled(indices.len()), || {
            let rows = self.resident_rows(indices)?;
            let batch = Batch::new(rows.features.view(), rows.targets.view());
            self.accumulate_with(&batch.with_rows_in_dataset(indices), part, None)
        })
    }

    // The sink may sum over MPI, which may only be called from the thread that set it up: the
    // steps that hand gradients to one stay on the caller's thread.
    fn accumulate_into(
        &mut self,
        batch: &Batch<'_>,
        part: Part,
        sink: &mut dyn GradientSink,
    ) -> Result<()> {
        self.accumulate_with(batch, part, Some(sink))
    }

    fn accumulate_resident_into(
        &mut self,
        indices: &[u32],
        part: Part,
        sink: &mut dyn GradientSink,
    ) -> Result<()> {
        let rows = self.resident_rows(indices)?;
        let batch = Batch::new(rows.features.view(), rows.targets.view());
        self.accumulate_with(&batch.with_rows_in_dataset(indices), part, Some(sink))
    }

    fn set_flat_gradients(&mut self, k: usize, flat: &[f32]) -> Result<()> {
        check_model(k, self.models.len())?;
        let model = &mut self.models[k];
        fill_trained(&model.trained, flat, &mut model.grads)
    }

    fn apply_update(&mut self) -> Result<()> {
        on_pool(self.pooled(1), || self.update());
        Ok(())
    }

    fn last_losses(&mut self) -> Result<Vec<f32>> {
        self.models
            .iter()
            .map(|m| m.last_loss.ok_or(Error::NoStepYet))
            .collect()
    }

    fn gradients(&mut self, k: usize) -> Result<Parameters> {
        check_model(k, self.models.len())?;
        Ok(self.models[k].grads.clone())
    }

    fn set_gradients(&mut self, k: usize, gradients: &Parameters) -> Result<()> {
        check_model(k, self.models.len())?;
        gradients.check_shapes(&self.first().model)?;
        self.models[k].grads = gradients.clone();
        Ok(())
    }

    fn parameters(&mut self, k: usize) -> Result<Parameters> {
        check_model(k, self.models.len())?;
        Ok(self.models[k].params.clone())
    }

    fn set_parameters(&mut self, k: usize, parameters: &Parameters) -> Result<()> {
        check_model(k, self.models.len())?;
        parameters.check_shapes(&self.first().model)?;
        self.models[k].params = parameters.clone();
        Ok(())
    }

    fn predict(&mut self, k: usize, features: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        check_model(k, self.models.len())?;
        let model = &self.setups[k].model;
        model.check_features(&features)?;
        let pooled = self.pooled(features.nrows());
        let params = &self.models[k].params;
        let mut acts = on_pool(pooled, || forward(model, params, features));
        Ok(acts.post.pop().expect("a model has at least one layer"))
    }

    fn runs_on_host(&self) -> bool {
        true
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn set_mask_seed(&mut self, seed: u64) {
        self.mask_seed = seed;
    }

    fn set_learning_rates(&mut self, lrs: &[f64]) -> Result<()> {
        check_learning_rates(self.setups.iter().map(|s| &s.optimizer), lrs)?;
        for (model, &lr) in self.models.iter_mut().zip(lrs) {
            model.lr = lr;
        }
        Ok(())
    }

    fn learning_rates(&self) -> Vec<f64> {
        self.models.iter().map(|m| m.lr).collect()
    }

    fn set_clip_norm(&mut self, max_norm: Option<f32>) -> Result<()> {
        check_clip_norm(max_norm)?;
        self.clip = max_norm;
        Ok(())
    }

    fn freeze(&mut self, k: usize) -> Result<()> {
        check_model(k, self.models.len())?;
        self.models[k].frozen = true;
        Ok(())
    }

    fn take_metrics(&mut self) -> Result<Vec<Metrics>> {
        Ok(self
            .models
            .iter_mut()
            .map(|m| std::mem::take(&mut m.metrics))
            .collect())
    }

    fn evaluate(&mut self, batch: &Batch<'_>) -> Result<Vec<Metrics>> {
        let first = self.first();
        batch.check(&first.model, first.loss)?;
        Ok(on_pool(self.pooled(batch.rows()), || {
            self.models
                .iter()
                .zip(&self.setups)
                .map(|(m, setup)| {
                    let acts = forward(&setup.model, &m.params, batch.features);
                    let output = acts.post.last().expect("a model has at least one layer");
                    let (value, _) = loss_and_gradient(setup.loss, output.view(), batch.targets);
                    Metrics {
                        loss_sum: value * batch.rows() as f32,
                        rows: batch.rows() as u64,
                        correct: correct_rows(setup.loss, output.view(), batch.targets),
                        nonfinite: false,
                    }
                })
                .collect()
        }))
    }

    fn optimizer_state(&mut self, k: usize) -> Result<OptimizerState> {
        check_model(k, self.models.len())?;
        let (setup, model) = (&self.setups[k], &self.models[k]);
        let slots = setup
            .optimizer
            .state_slots()
            .iter()
            .map(|slot| {
                let mut values = Parameters::zeros(&setup.model);
                for ((_, tensor), state) in values.tensors_mut().zip(&model.state) {
                    tensor.copy_from_slice(&state[slot.index]);
                }
                (slot.name.to_string(), values)
            })
            .collect();
        Ok(OptimizerState {
            steps: self.steps,
            slots,
        })
    }

    fn set_optimizer_state(&mut self, k: usize, state: &OptimizerState) -> Result<()> {
        check_model(k, self.models.len())?;
        let setup = &self.setups[k];
        check_optimizer_state(setup, state)?;
        let model = &mut self.models[k];
        for (slot, (_, values)) in setup.optimizer.state_slots().iter().zip(&state.slots) {
            for (tensor, saved) in model.state.iter_mut().zip(values.named_tensors()) {
                tensor[slot.index].clone_from(&saved.values);
            }
        }
        self.steps = state.steps;
        Ok(())
    }

    fn load_resident(&mut self, data: Arc<Dataset>) -> Result<()> {
        self.resident = Some(data);
        Ok(())
    }

    fn synchronize(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Runs `work` on a thread of the current rayon pool (the global one unless the caller is
/// already in another) when `pooled`, the caller waiting for it, else on the caller's thread. A
/// step's serial parts (bias, activations, loss) then run on one of the pool's threads, which
/// takes its share of every product and update in turn, instead of on a thread outside the pool
/// that sleeps through each product while the pool's threads spin between them: with as many
/// threads as cores, nothing competes for a core. Which thread runs what changes no bit of the
/// result.
fn on_pool<R: Send>(pooled: bool, work: impl FnOnce() -> R + Send) -> R {
    if pooled {
        rayon::scope(|_| work())
    } else {
        work()
    }
}
