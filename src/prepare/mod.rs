//! Run preparation: from what a run asks for ([`RunRequest`]) to what training starts from
//! ([`PreparedRun`]): the training and validation rows (read whole or memory-mapped), the model
//! (inferred from the data, or a starting checkpoint's), the loss, the starting parameters, the
//! features' and targets' statistics and a resumed training state, each checked before any
//! engine exists. The `downhill` commands that train all prepare their runs here.
//!
//! ```no_run
//! use downhill::data::load::DataSpec;
//! use downhill::data::task::Task;
//! use downhill::optim::Adam;
//! use downhill::prepare::{MemoryMap, ModelRequest, RunRequest, Validation, prepare};
//! use downhill::{Activation, Norm, Optimizer};
//!
//! # fn main() -> downhill::Result<()> {
//! let request = RunRequest {
//!     data: Some(DataSpec::Files {
//!         features: "x.npy".into(),
//!         targets: "y.npy".into(),
//!         drop_nonfinite: false,
//!     }),
//!     validation: Validation::Split(0.2),
//!     memory_map: MemoryMap::Auto,
//!     model: ModelRequest {
//!         task: Task::Auto,
//!         layers: vec![],
//!         activation: Activation::Relu,
//!         norm: Norm::None,
//!         dropout: 0.0,
//!         loss: None,
//!         init: None,
//!     },
//!     standardize: true,
//!     standardize_targets: false,
//!     resume: None,
//!     optimizer: Optimizer::Adam(Adam::default()),
//!     models: 1,
//!     cpu_engine: true,
//!     batch_size: 32,
//!     seed: 0,
//!     epochs: None,
//!     max_steps: None,
//! };
//! let run = prepare(&request, &mut |note| eprintln!("{note:?}"))?;
//! println!("{} rows, {} parameters", run.data.rows(), run.setup.model.parameter_count());
//! # Ok(()) }
//! ```

mod memory;
mod model;
mod note;
mod request;
mod rows;
mod scaling;

use std::sync::Arc;

pub use note::Note;
pub use request::{MemoryMap, ModelRequest, RunRequest, Validation};

use crate::checkpoint::{TrainingState, load_state};
use crate::data::load::DataSpec;
use crate::data::{Dataset, Standardizer};
use crate::engine::Setup;
use crate::error::{Error, Result};
use crate::model::Parameters;
use crate::train::{TrainData, check_length};

/// Everything a run needs before an engine exists, as [`prepare`] made it from a
/// [`RunRequest`].
pub struct PreparedRun {
    /// Epochs to train: the request's, else 10, or 30 for the built-in default run.
    pub epochs: u64,
    /// The training state resumed from.
    pub resume: Option<TrainingState>,
    /// The training rows, standardised when asked (memory-mapped features as each batch is
    /// read), their targets fitted to the model and the loss.
    pub data: TrainData,
    /// The training data's name (its features or CSV file, or the built-in dataset's name), for
    /// messages.
    pub name: String,
    /// The validation rows, if any, fitted and standardised as the training rows are.
    pub validation: Option<Dataset>,
    /// Model, loss and optimizer.
    pub setup: Setup,
    /// The starting parameters: the starting checkpoint's, or PyTorch's initialisation from the
    /// seed.
    pub start: Parameters,
    /// The feature statistics applied, if any.
    pub standardizer: Option<Standardizer>,
    /// The regression targets' statistics applied, when they are standardised (asked for, or a
    /// starting checkpoint's).
    pub target_standardizer: Option<Standardizer>,
}

/// Loads and fits together what `request` asks for: checks the run's size and length, reads the
/// training state to resume from, the rows and the starting checkpoint, decides the task, model
/// and loss, fits the statistics, and refuses a run whose models would not fit in the host's
/// memory. Each decision the request left open, and each row skipped, is passed to `on_note` as
/// it is made.
pub fn prepare(request: &RunRequest, on_note: &mut dyn FnMut(Note)) -> Result<PreparedRun> {
    if request.batch_size == 0 {
        return Err(Error::Usage("--batch-size must be at least 1".into()));
    }
    // Before any data is loaded.
    check_length(request.epochs, request.max_steps)?;
    let default_run = request.data.is_none();
    let epochs = request.epochs.unwrap_or(if default_run { 30 } else { 10 });
    if default_run {
        on_note(Note::DefaultRun);
    }
    let resume = request.resume.as_deref().map(load_state).transpose()?;
    let init = resume.as_ref().map(|state| state.checkpoint.clone());
    let spec = request.data.clone().unwrap_or_else(|| DataSpec::Builtin {
        name: "digits".into(),
        seed: request.seed,
    });
    let mut rows = rows::load_rows(request, &spec, default_run, on_note)?;
    let (model, loss, init) = model::fit_model(request, init, &mut rows, on_note)?;
    let standardizer =
        scaling::scale_features(init.as_ref(), request.standardize || default_run, &mut rows)?;
    let target_standardizer =
        scaling::scale_targets(init.as_ref(), request.standardize_targets, loss, &mut rows)?;
    let setup = Setup {
        model,
        loss,
        optimizer: request.optimizer,
    };
    memory::check_host_memory(request, &setup, rows.train.rows())?;
    let start = init.map_or_else(
        || Parameters::init(&setup.model, request.seed),
        |c| c.parameters,
    );
    let name = rows.train.name.clone();
    let data = match rows.mapped {
        Some(source) => TrainData::Mapped(Arc::new(source)),
        None => TrainData::Memory(Arc::new(rows.train)),
    };
    Ok(PreparedRun {
        epochs,
        resume,
        data,
        name,
        validation: rows.validation,
        setup,
        start,
        standardizer,
        target_standardizer,
    })
}
