//! Hyperparameter sweeps and random restarts: K models of one architecture, one per point of a
//! grid of learning rates, momenta, weight decays and seeds, trained in lock step on the same
//! batches by the one training loop ([`super::train`]). A model whose loss or update stops being
//! finite is marked diverged and frozen while the others go on; at the end the best model is
//! the one with the lowest final validation loss (training loss without validation data) among
//! those that did not diverge.

use super::config::{TrainConfig, TrainData};
use super::report::{ModelRun, Observer, Stop};
use super::run::{refuse_single_run_options, run};
use crate::data::Dataset;
use crate::engine::{Engine, Member};
use crate::error::{Error, Result};
use crate::model::{ModelSpec, Parameters};
use crate::optim::Optimizer;

/// Why restarts cannot start from one given set of parameters.
pub const RESTARTS_FROM_ONE_START: &str = "restarts draw different initial parameters, but a \
    starting checkpoint gives every model the same ones: drop --init or --restarts";

/// What sets one model of a sweep apart: its hyperparameters and its initialisation seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Setting {
    /// Learning rate.
    pub lr: f64,
    /// Momentum, when the sweep sets it.
    pub momentum: Option<f64>,
    /// Weight decay, when the sweep sets it.
    pub weight_decay: Option<f64>,
    /// Seed of the initial parameters.
    pub seed: u64,
}

impl Setting {
    /// A short name: the learning rate, what else the grid varies, and the seed when there are
    /// restarts (`lr=0.01 momentum=0.9 seed=1`).
    pub fn label(&self, grid: &Grid) -> String {
        let mut parts = vec![format!("lr={}", self.lr)];
        if let Some(m) = self.momentum {
            parts.push(format!("momentum={m}"));
        }
        if let Some(wd) = self.weight_decay {
            parts.push(format!("weight_decay={wd}"));
        }
        if grid.restarts > 1 {
            parts.push(format!("seed={}", self.seed));
        }
        parts.join(" ")
    }
}

/// The values to try. The models are the product `lr × momentum × weight_decay × restarts`, in
/// that order (restarts vary fastest); an empty list keeps the base optimizer's value.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// Learning rates.
    pub lr: Vec<f64>,
    /// Momenta (SGD and RMSprop).
    pub momentum: Vec<f64>,
    /// Weight decays.
    pub weight_decay: Vec<f64>,
    /// Initialisations per setting: seeds `seed`, `seed + 1`, ..., `seed + restarts − 1`.
    pub restarts: u64,
    /// The first initialisation seed.
    pub seed: u64,
}

impl Grid {
    /// Every model's setting, with `base` supplying the learning rate when `lr` is empty.
    pub fn settings(&self, base: &Optimizer) -> Vec<Setting> {
        let or_base = |list: &[f64], base: Option<f64>| -> Vec<Option<f64>> {
            if list.is_empty() {
                vec![base]
            } else {
                list.iter().copied().map(Some).collect()
            }
        };
        let mut settings = Vec::new();
        for lr in or_base(&self.lr, Some(base.lr())) {
            for momentum in or_base(&self.momentum, None) {
                for weight_decay in or_base(&self.weight_decay, None) {
                    for restart in 0..self.restarts.max(1) {
                        settings.push(Setting {
                            lr: lr.unwrap_or(base.lr()),
                            momentum,
                            weight_decay,
                            seed: self.seed + restart,
                        });
                    }
                }
            }
        }
        settings
    }

    /// Every model as a pack member: `base` with the setting's hyperparameters, starting from
    /// `init` when given (then there can be no restarts: they would all be the same model) or
    /// from parameters drawn with the setting's seed.
    pub fn members(
        &self,
        base: &Optimizer,
        model: &ModelSpec,
        init: Option<&Parameters>,
    ) -> Result<Vec<(Setting, Member)>> {
        if init.is_some() && self.restarts > 1 {
            return Err(Error::Usage(RESTARTS_FROM_ONE_START.into()));
        }
        self.settings(base)
            .into_iter()
            .map(|s| {
                let mut optimizer = base.with_lr(s.lr);
                if let Some(m) = s.momentum {
                    optimizer = optimizer.with_momentum(m)?;
                }
                if let Some(wd) = s.weight_decay {
                    optimizer = optimizer.with_weight_decay(wd)?;
                }
                optimizer.validate()?;
                let parameters = match init {
                    Some(p) => p.clone(),
                    None => Parameters::init(model, s.seed),
                };
                Ok((
                    s,
                    Member {
                        optimizer,
                        parameters,
                    },
                ))
            })
            .collect()
    }
}

/// What a sweep did.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepReport {
    /// Each model's run, in the engine's order.
    pub models: Vec<ModelRun>,
    /// The model with the lowest score (see [`ModelRun::score`]; ties go to the first), if any
    /// did not diverge.
    pub best: Option<usize>,
    /// Why it ended ([`Stop::Completed`] also when every model diverged).
    pub stop: Stop,
    /// Steps taken.
    pub steps: u64,
    /// Whether batches were gathered from data resident on the device.
    pub resident: bool,
}

/// Trains every model of `engine` on `data` in lock step for the run `config` describes
/// (validating each on `val` after every epoch), and ranks them. Early stopping and
/// training-state checkpoints are for single runs and are refused here, whatever the number of
/// models.
pub fn sweep(
    engine: &mut dyn Engine,
    data: &TrainData,
    val: Option<&Dataset>,
    config: &TrainConfig,
    observer: &mut dyn Observer,
) -> Result<SweepReport> {
    refuse_single_run_options(config, false)?;
    let report = run(engine, data, val, config, None, observer, true)?;
    Ok(SweepReport {
        best: best_of(&report.models),
        models: report.models,
        stop: report.stop,
        steps: report.steps,
        resident: report.resident,
    })
}

/// The model with the lowest score ([`ModelRun::score`]; ties go to the first), if any did not
/// diverge.
pub fn best_of(models: &[ModelRun]) -> Option<usize> {
    models
        .iter()
        .enumerate()
        .filter_map(|(k, r)| r.score().map(|s| (k, s)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k)
}
