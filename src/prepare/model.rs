//! A run's model and loss: from its starting checkpoint, or from the request and the targets
//! (classes or values, inferred unless the task or the loss says), and the targets fitted to
//! them.

use crate::checkpoint::{ModelCheckpoint, load_init};
use crate::data::load::{adapt_targets, outputs_for};
use crate::data::task::{self, Task};
use crate::error::{Error, Result};
use crate::loss::{Loss, Targets};
use crate::model::{Activation, ModelSpec, Norm};

use super::rows::Rows;
use super::{Note, RunRequest};

/// The model and loss for `rows`: the starting checkpoint's (`init`, a resumed state's, else
/// the request's `--init`, loaded here), or the request's layers (by default
/// `inputs, 64, outputs`); the targets of `rows` are fitted to them. Returns the model, the loss
/// and the starting checkpoint.
pub(super) fn fit_model(
    request: &RunRequest,
    mut init: Option<ModelCheckpoint>,
    rows: &mut Rows,
    on_note: &mut dyn FnMut(Note),
) -> Result<(ModelSpec, Loss, Option<ModelCheckpoint>)> {
    let asked = &request.model;
    let hidden = asked.activation;
    // Classes or values: inferred from the targets, unless a loss, a starting model or the task
    // says. (A loss other than cross-entropy takes the targets as they come: class labels then
    // become one-hot rows or a 0/1 column, values stay values.)
    let task = match (asked.task, asked.loss) {
        (Task::Auto, Some(loss)) if !loss.takes_class_indices() => None,
        (task, _) => Some(task),
    };
    if let Some(task) = task
        && init.is_none()
        && asked.init.is_none()
    {
        infer_task(rows, task, on_note)?;
    }
    let by_targets = if matches!(rows.train.targets, Targets::Classes(_)) {
        Loss::CrossEntropy
    } else {
        Loss::Mse
    };
    if init.is_none()
        && let Some(path) = &asked.init
    {
        init = Some(
            load_init(
                path,
                hidden,
                (asked.norm, asked.dropout),
                asked.loss.unwrap_or(by_targets),
            )?
            .0,
        );
    }
    let loss = asked
        .loss
        .or(init.as_ref().map(|c| c.loss))
        .unwrap_or(by_targets);
    let feature_cols = rows.feature_cols;
    let model = match &init {
        Some(c) => {
            let source = match (&request.resume, &asked.init) {
                (Some(p), _) => format!("--resume checkpoint {}", p.display()),
                (None, Some(p)) => format!("--init checkpoint {}", p.display()),
                (None, None) => "starting checkpoint".into(),
            };
            if !asked.layers.is_empty() && asked.layers != c.model.widths() {
                return Err(Error::InvalidModel(format!(
                    "--layers {:?} differs from the architecture of the {source}, {:?}; drop \
                     --layers or give the layers it was trained with",
                    asked.layers,
                    c.model.widths()
                )));
            }
            if asked.dropout > 0.0 && asked.dropout != c.model.dropout() {
                return Err(Error::InvalidModel(format!(
                    "--dropout {} differs from the {source}'s, {}; drop --dropout or give the \
                     probability it was trained with",
                    asked.dropout,
                    c.model.dropout()
                )));
            }
            // The kind of norm must match; the checkpoint's ε and momentum are kept.
            let kind = |n: Norm| std::mem::discriminant(&n);
            if asked.norm != Norm::None && kind(asked.norm) != kind(c.model.norm()) {
                return Err(Error::InvalidModel(format!(
                    "--norm {} differs from the {source}'s, {}; drop --norm or give the norm it \
                     was trained with",
                    norm_name(asked.norm),
                    norm_name(c.model.norm())
                )));
            }
            c.model.clone()
        }
        None if asked.layers.is_empty() => ModelSpec::mlp(
            &[feature_cols, 64, outputs_for(&rows.train.targets, loss)],
            hidden,
            Activation::Identity,
            asked.norm,
            asked.dropout,
        )?,
        None => ModelSpec::mlp(
            &asked.layers,
            hidden,
            Activation::Identity,
            asked.norm,
            asked.dropout,
        )?,
    };
    if model.inputs() != feature_cols {
        return Err(Error::InvalidModel(format!(
            "the model takes {} inputs but {} has {feature_cols} feature columns; the first --layers width must be {feature_cols}",
            model.inputs(),
            rows.train.name
        )));
    }
    for data in std::iter::once(&mut rows.train).chain(rows.validation.as_mut()) {
        let given = std::mem::replace(&mut data.targets, Targets::Classes(vec![]));
        data.targets = adapt_targets(given, loss, model.outputs(), &data.name)?;
    }
    Ok((model, loss, init))
}

/// The training targets as `task` says (and the validation targets as classes when the training
/// targets were found to be), what was inferred told in a [`Note::Classes`].
fn infer_task(rows: &mut Rows, task: Task, on_note: &mut dyn FnMut(Note)) -> Result<()> {
    let train = &mut rows.train;
    let given = std::mem::replace(&mut train.targets, Targets::Classes(vec![]));
    let (targets, inferred) = task::apply(given, task, &train.name)?;
    train.targets = targets;
    if let Some(found) = inferred {
        if let Some(v) = &mut rows.validation {
            let given = std::mem::replace(&mut v.targets, Targets::Classes(vec![]));
            v.targets = task::apply(given, Task::Classification, &v.name)?.0;
        }
        on_note(Note::Classes(found));
    }
    Ok(())
}

/// `--norm`'s words for `norm`: `none`, or `layer` with its ε.
fn norm_name(norm: Norm) -> String {
    match norm {
        Norm::None => "none".into(),
        Norm::Layer { eps } => format!("layer (eps {eps})"),
        Norm::Batch { eps, momentum } => format!("batch (eps {eps}, momentum {momentum})"),
    }
}
