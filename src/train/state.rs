//! A single run's training state: restoring one to resume from, and writing one (periodically,
//! and when the run is interrupted).

use super::config::TrainConfig;
use super::length::RunPlan;
use super::report::Observer;
use crate::checkpoint::{ModelCheckpoint, TrainingState, save_state};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::Parameters;

/// What a resumed run carries on with: its first step, the best validation loss and parameters
/// seen so far, and the epochs since the loss last improved.
pub(crate) struct Resumed {
    pub first: u64,
    pub best: Option<(f64, Parameters)>,
    pub stale: u64,
}

/// Checks that `state` fits this run and loads its parameters and optimizer state into model 0
/// of `engine`; warns of what the run goes on despite.
pub(crate) fn restore(
    engine: &mut dyn Engine,
    state: &TrainingState,
    plan: &RunPlan,
    config: &TrainConfig,
    observer: &mut dyn Observer,
) -> Result<Resumed> {
    let (epoch, batch) = state.position;
    let per_epoch = plan.steps_per_epoch;
    let first = epoch * per_epoch + batch as u64 / plan.accumulate;
    if state.state.steps != first
        || batch as u64 > plan.batches
        || !(batch as u64).is_multiple_of(plan.accumulate)
    {
        return Err(Error::Usage(format!(
            "the training state is at step {} (epoch {epoch}, batch {batch}), which does not \
             fit {per_epoch} steps of {} batches per epoch: resume with the same data, batch \
             size, --accumulate and --drop-last",
            state.state.steps, plan.accumulate
        )));
    }
    let total = plan.total;
    if first == total {
        observer.warning(&format!(
            "the training state is at step {first}, where this run ends: nothing is left to \
             train, so the model is as the state holds it"
        ));
    }
    if first > total {
        return Err(Error::Usage(format!(
            "the training state is at step {first} (epoch {epoch}), and this run ends at step \
             {total} (--epochs {}{}): nothing is left to train; give more --epochs",
            config.epochs,
            config
                .max_steps
                .map_or(String::new(), |m| format!(", --max-steps {m}"))
        )));
    }
    if state.seed != config.seed {
        observer.warning(&format!(
            "the training state was saved by a run with --seed {}, and this one has --seed {}: \
             the batches from here on (and a --val-split, and dropout's masks) differ from the \
             run it continues",
            state.seed, config.seed
        ));
    }
    let optimizer = engine.setup(0).optimizer.name();
    if state.optimizer != optimizer {
        return Err(Error::Usage(format!(
            "the training state was saved by {}, but this run uses {optimizer}: resume with the \
             optimizer it was trained with",
            state.optimizer
        )));
    }
    engine.set_parameters(0, &state.checkpoint.parameters)?;
    engine.set_optimizer_state(0, &state.state)?;
    Ok(Resumed {
        first,
        best: state.best_val_loss.zip(state.best_parameters.clone()),
        stale: state.epochs_without_improvement,
    })
}

/// Where a single run stands, for its training state.
pub(crate) struct Standing<'a> {
    pub step: u64,
    pub best: &'a Option<(f64, Parameters)>,
    pub stale: u64,
    pub checksum: &'a str,
}

/// Writes model 0's training state at `standing` to the plan's file, if the run has one. Never
/// overwrites a good checkpoint with a diverged model: parameters that are not finite are
/// [`Error::Diverged`].
pub(crate) fn write(
    engine: &mut dyn Engine,
    config: &TrainConfig,
    plan: &RunPlan,
    standing: Standing<'_>,
) -> Result<()> {
    let Some(checkpoint) = config.checkpoint.as_ref().filter(|c| c.writes) else {
        return Ok(());
    };
    let parameters = engine.parameters(0)?;
    if parameters
        .named_tensors()
        .iter()
        .any(|t| t.values.iter().any(|v| !v.is_finite()))
    {
        return Err(Error::Diverged {
            step: standing.step,
            what: "the parameters are no longer finite".into(),
            lr: engine.learning_rate(),
            // A tenth of the rate the run was given (--lr), whatever the schedule made of it.
            suggested: engine.setup(0).optimizer.lr() / 10.0,
        });
    }
    let setup = engine.setup(0);
    let state = TrainingState {
        checkpoint: ModelCheckpoint {
            model: setup.model,
            loss: setup.loss,
            parameters,
            standardizer: checkpoint.standardizer.clone(),
            target_standardizer: checkpoint.target_standardizer.clone(),
        },
        optimizer: setup.optimizer.name().to_string(),
        state: engine.optimizer_state(0)?,
        position: plan.position(standing.step),
        seed: config.seed,
        best_val_loss: standing.best.as_ref().map(|(l, _)| *l),
        best_parameters: standing.best.as_ref().map(|(_, p)| p.clone()),
        epochs_without_improvement: standing.stale,
        data_checksum: standing.checksum.to_string(),
        run_flags: checkpoint.run_flags.clone(),
    };
    save_state(&checkpoint.path, &state)
}

/// A training state's write: a file that could not be written is told (the run goes on without
/// it); anything else, such as parameters that are no longer finite, ends the run.
pub(crate) fn tolerated(written: Result<()>) -> Result<Option<String>> {
    match written {
        Ok(()) => Ok(None),
        Err(e @ Error::Io { .. }) => Ok(Some(e.to_string())),
        Err(e) => Err(e),
    }
}
