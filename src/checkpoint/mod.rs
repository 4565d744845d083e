//! Checkpoints as safetensors, written atomically.
//!
//! A model checkpoint holds `layers.{i}.weight` `[out, in]` and `layers.{i}.bias` `[out]` as
//! f32, exactly as PyTorch's `nn.Linear` names and lays them out; `safetensors.numpy.load_file`
//! or candle read the tensors unchanged. A model with norms adds `norms.{i}.weight` and
//! `norms.{i}.bias` `[width]` (and, for batch norms, the buffers `norms.{i}.running_mean`,
//! `norms.{i}.running_var` and int64 `norms.{i}.num_batches_tracked`), `i` the index of the
//! `Linear` the norm follows. In PyTorch, `load_state_dict(strict=True)` takes it into a module
//! whose parameters are an `nn.ModuleList` named `layers` holding one `nn.Linear(in, out)` per
//! entry of the metadata's `architecture` with widths, and one named `norms` holding an
//! `nn.LayerNorm` or `nn.BatchNorm1d` per norm entry. A plain
//! `nn.Sequential(Linear, ReLU, Linear)` does not load it: its keys are `0.weight`, `2.weight`.
//! The activations are not in the tensors: the module applies each layer's, as the
//! `architecture` names it, after its `Linear` (`leaky_relu(s)` is `nn.LeakyReLU(s)`, `gelu` is
//! `nn.GELU(approximate="tanh")`), and standardises its input first with `feature_mean` and
//! `feature_std` when they are present (kept out of the state dict, e.g. buffers registered
//! with `persistent=False`). Its outputs are the model's: logits for `cross-entropy` and
//! `bce-logits` (softmax or sigmoid give probabilities), values for `mse` (mapped back as
//! `y·target_std + target_mean` when those are present). The README's
//! "Loading a checkpoint in PyTorch" has such a module, `Downhill`, built from the metadata.
//! A training-state checkpoint also holds optimizer tensors, so only a model checkpoint (what
//! `--save` writes) loads strictly. The metadata (string to string) records:
//!
//! | key | value |
//! | --- | --- |
//! | `format` | `downhill.model` or `downhill.training_state` |
//! | `architecture` | JSON list, input first, of `{"in", "out", "activation"}` (a `Linear`), `{"norm": "layer", "width", "eps", "activation"}`, `{"norm": "batch", "width", "eps", "momentum", "activation"}` and `{"dropout": p, "width"}`; a norm's activation replaces its `Linear`'s (identity) |
//! | `loss` | `mse`, `cross-entropy` or `bce-logits` |
//! | `feature_mean`, `feature_std` | JSON lists, when features were standardised: apply `(x − mean) / std` |
//! | `target_mean`, `target_std` | JSON lists, when regression targets were standardised: outputs are `y·std + mean` |
//!
//! A training-state checkpoint adds every optimizer state tensor as
//! `optimizer.{slot}.layers.{i}.{weight|bias}`, the best parameters so far (early stopping) as
//! `best.layers.{i}.{weight|bias}`, and, in the metadata, `optimizer` (its name),
//! `steps`, `epoch`, `batch` (the next batch of that epoch), `seed`, `best_val_loss`,
//! `epochs_without_improvement`, `data_checksum` and, when the command line wrote it, `run_flags`
//! (a JSON list of the run's flags, from which `downhill train --resume FILE` continues it).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ndarray::Array1;
use safetensors::SafeTensors;
use serde_json::{Value, json};

mod tensors;

use self::tensors::{
    RawTensor, bad, batch_norm_blocks, parameter_tensors, read_parameters, serialize,
};
use crate::data::Standardizer;
use crate::engine::OptimizerState;
use crate::error::Result;
use crate::fsio::{self, Extent};
use crate::loss::Loss;
use crate::model::batch_norm::batches_tracked_name;
use crate::model::{Activation, Layer, ModelSpec, Norm, Parameters};

/// What a model checkpoint holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelCheckpoint {
    /// The architecture.
    pub model: ModelSpec,
    /// The loss it was trained with.
    pub loss: Loss,
    /// Its parameters.
    pub parameters: Parameters,
    /// The feature standardisation to apply before the model, if any.
    pub standardizer: Option<Standardizer>,
    /// The standardisation the regression targets were trained under, if any
    /// (`--standardize-targets`): the model's outputs are mapped back by `y = ŷ·σ + μ`.
    pub target_standardizer: Option<Standardizer>,
}

/// Everything needed to resume a run exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingState {
    /// Model, loss, parameters and feature statistics.
    pub checkpoint: ModelCheckpoint,
    /// PyTorch's name of the optimizer (`Adam`, ...).
    pub optimizer: String,
    /// The optimizer's state and step count.
    pub state: OptimizerState,
    /// The next batch to train on: (epoch, batch within the epoch).
    pub position: (u64, usize),
    /// The run's seed (shuffling).
    pub seed: u64,
    /// Best validation loss so far and epochs since it improved (early stopping).
    pub best_val_loss: Option<f64>,
    /// The parameters at the best validation loss (restored when early stopping ends the run).
    pub best_parameters: Option<Parameters>,
    /// Epochs since the validation loss last improved.
    pub epochs_without_improvement: u64,
    /// Checksum of the training data (see [`crate::data::scheduler::Source::checksum`]).
    pub data_checksum: String,
    /// The command-line flags of the run that wrote it (`--name=value` words, as the command
    /// line records them), so that a resume can continue the run from the file alone; `None`
    /// when the run was not started from the command line.
    pub run_flags: Option<Vec<String>>,
}

fn metadata(c: &ModelCheckpoint, format: &str) -> HashMap<String, String> {
    let layers: Vec<Value> = c.model.layers().iter().map(Layer::describe).collect();
    let mut meta = HashMap::from([
        ("format".to_string(), format.to_string()),
        ("architecture".to_string(), Value::Array(layers).to_string()),
        ("loss".to_string(), c.loss.name().to_string()),
    ]);
    for (what, stats) in [
        ("feature", &c.standardizer),
        ("target", &c.target_standardizer),
    ] {
        if let Some(s) = stats {
            meta.insert(format!("{what}_mean"), json!(s.mean.to_vec()).to_string());
            meta.insert(format!("{what}_std"), json!(s.std.to_vec()).to_string());
        }
    }
    meta
}

/// Writes a model checkpoint to `path` atomically.
pub fn save_model(path: &Path, c: &ModelCheckpoint) -> Result<()> {
    let name = path.display().to_string();
    let bytes = serialize(
        parameter_tensors("", &c.parameters, &c.model, true),
        metadata(c, "downhill.model"),
        &name,
    )?;
    fsio::write_atomic(path, &bytes)
}

/// Writes a training-state checkpoint to `path` atomically.
pub fn save_state(path: &Path, s: &TrainingState) -> Result<()> {
    let name = path.display().to_string();
    let model = &s.checkpoint.model;
    let mut tensors: Vec<RawTensor> = parameter_tensors("", &s.checkpoint.parameters, model, true);
    for (slot, values) in &s.state.slots {
        tensors.extend(parameter_tensors(
            &format!("optimizer.{slot}."),
            values,
            model,
            false,
        ));
    }
    if let Some(best) = &s.best_parameters {
        tensors.extend(parameter_tensors("best.", best, model, true));
    }
    let mut meta = metadata(&s.checkpoint, "downhill.training_state");
    meta.extend([
        ("optimizer".to_string(), s.optimizer.clone()),
        (
            "optimizer_slots".to_string(),
            json!(s.state.slots.iter().map(|(n, _)| n).collect::<Vec<_>>()).to_string(),
        ),
        ("steps".to_string(), s.state.steps.to_string()),
        ("epoch".to_string(), s.position.0.to_string()),
        ("batch".to_string(), s.position.1.to_string()),
        ("seed".to_string(), s.seed.to_string()),
        (
            "best_val_loss".to_string(),
            json!(s.best_val_loss).to_string(),
        ),
        (
            "epochs_without_improvement".to_string(),
            s.epochs_without_improvement.to_string(),
        ),
        ("data_checksum".to_string(), s.data_checksum.clone()),
    ]);
    if let Some(flags) = &s.run_flags {
        meta.insert("run_flags".to_string(), json!(flags).to_string());
    }
    fsio::write_atomic(path, &serialize(tensors, meta, &name)?)
}

/// Reads a model checkpoint (a training-state checkpoint also holds one).
pub fn load_model(path: &Path) -> Result<ModelCheckpoint> {
    let name = path.display().to_string();
    let bytes = fsio::read_until(path, extent)?;
    let (tensors, meta) = open(&bytes, &name)?;
    read_checkpoint(&tensors, &meta, &name)
}

/// Reads starting parameters for `--init`: a downhill checkpoint as [`load_model`] does, or a
/// plain safetensors file (as saved from PyTorch) holding `layers.{i}.weight` `[out, in]` and
/// `layers.{i}.bias`, and with `norm`, each hidden layer's `norms.{i}.weight` and
/// `norms.{i}.bias`: the widths come from the tensors' shapes, the activations are `hidden`
/// and, on the last layer, identity, with `dropout` after each hidden layer. A tensor the model
/// does not have is an error. Returns the checkpoint and whether it was plain.
pub fn load_init(
    path: &Path,
    hidden: Activation,
    (norm, dropout): (Norm, f32),
    loss: Loss,
) -> Result<(ModelCheckpoint, bool)> {
    let name = path.display().to_string();
    let bytes = fsio::read_until(path, extent)?;
    let (tensors, meta) = open(&bytes, &name)?;
    if meta.contains_key("architecture") {
        return read_checkpoint(&tensors, &meta, &name).map(|c| (c, false));
    }
    let mut widths = Vec::new();
    while let Ok(w) = tensors.tensor(&format!("layers.{}.weight", widths.len().saturating_sub(1))) {
        let (out, inp) = match w.shape() {
            [out, inp] => (*out, *inp),
            other => {
                return Err(bad(
                    &name,
                    format!(
                        "tensor `layers.{}.weight` has shape {other:?}; a weight is [out, in]",
                        widths.len().saturating_sub(1)
                    ),
                ));
            }
        };
        if widths.is_empty() {
            widths.push(inp);
        } else if *widths.last().expect("not empty") != inp {
            return Err(bad(
                &name,
                format!(
                    "layers.{}.weight takes {inp} inputs but the layer before outputs {}",
                    widths.len() - 1,
                    widths.last().expect("not empty")
                ),
            ));
        }
        widths.push(out);
    }
    if widths.is_empty() {
        return Err(bad(
            &name,
            "has neither downhill metadata nor a tensor `layers.0.weight`; name the tensors as nn.Linear layers: layers.{i}.weight [out, in], layers.{i}.bias [out]",
        ));
    }
    let model = ModelSpec::mlp(&widths, hidden, Activation::Identity, norm, dropout)?;
    let parameters = read_parameters(&tensors, &model, "", (&name, true))?;
    let mut known: Vec<String> = model.tensor_shapes().into_iter().map(|(n, _)| n).collect();
    known.extend(batch_norm_blocks(&model).map(batches_tracked_name));
    let mut names = tensors.names();
    names.sort();
    if let Some(extra) = names
        .into_iter()
        .find(|t| !known.iter().any(|name| name == *t))
    {
        let batch_buffer = extra.contains("running_") || extra.contains("num_batches_tracked");
        let hint = if batch_buffer && !matches!(norm, Norm::Batch { .. }) {
            "pass --norm batch for a model with a batch norm (and its running statistics) after \
             each hidden layer"
        } else if extra.starts_with("norms.") && norm == Norm::None {
            "pass --norm layer (or --norm batch, for running statistics) for a model with a \
             norm after each hidden layer"
        } else {
            "remove it from the file, or give the flags of the model it belongs to"
        };
        return Err(bad(
            &name,
            format!("has a tensor `{extra}` that the model does not have; {hint}"),
        ));
    }
    Ok((
        ModelCheckpoint {
            model,
            loss,
            parameters,
            standardizer: None,
            target_standardizer: None,
        },
        true,
    ))
}

/// Reads a training-state checkpoint.
pub fn load_state(path: &Path) -> Result<TrainingState> {
    let name = path.display().to_string();
    let bytes = fsio::read_until(path, extent)?;
    let (tensors, meta) = open(&bytes, &name)?;
    if meta.get("format").map(String::as_str) != Some("downhill.training_state") {
        return Err(bad(
            &name,
            "is a model checkpoint, not a training state; --resume needs the file written by --checkpoint-every or on interruption",
        ));
    }
    let checkpoint = read_checkpoint(&tensors, &meta, &name)?;
    let get = |key: &str| {
        meta.get(key)
            .ok_or_else(|| bad(&name, format!("has no `{key}` in its metadata")))
    };
    let number = |key: &str| -> Result<u64> {
        get(key)?
            .parse()
            .map_err(|_| bad(&name, format!("has an unreadable `{key}`")))
    };
    let slots: Vec<String> = serde_json::from_str(get("optimizer_slots")?)
        .map_err(|_| bad(&name, "has unreadable `optimizer_slots`"))?;
    let slots = slots
        .into_iter()
        .map(|slot| {
            Ok((
                slot.clone(),
                read_parameters(
                    &tensors,
                    &checkpoint.model,
                    &format!("optimizer.{slot}."),
                    (&name, false),
                )?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(TrainingState {
        optimizer: get("optimizer")?.clone(),
        state: OptimizerState {
            steps: number("steps")?,
            slots,
        },
        position: (number("epoch")?, number("batch")? as usize),
        seed: number("seed")?,
        best_val_loss: serde_json::from_str(get("best_val_loss")?)
            .map_err(|_| bad(&name, "has an unreadable `best_val_loss`"))?,
        best_parameters: match tensors.tensor("best.layers.0.weight") {
            Ok(_) => Some(read_parameters(
                &tensors,
                &checkpoint.model,
                "best.",
                (&name, true),
            )?),
            Err(_) => None,
        },
        epochs_without_improvement: number("epochs_without_improvement")?,
        data_checksum: get("data_checksum")?.clone(),
        run_flags: meta
            .get("run_flags")
            .map(|f| {
                serde_json::from_str(f)
                    .map_err(|_| bad(&name, "has unreadable `run_flags` (a JSON list of strings)"))
            })
            .transpose()?,
        checkpoint,
    })
}

/// The most bytes a safetensors header may take (the format's own limit).
const MAX_HEADER: usize = 100_000_000;

/// How much of a safetensors input to read, judged from its first bytes: the header's length, the
/// header, then the data its tensors' offsets reach, and no more (so a pipe or a device is read
/// no further). Whatever is wrong stops the reading, for [`open`] to report.
fn extent(head: &[u8]) -> Extent {
    let Some(&length) = head.first_chunk::<8>() else {
        return Extent::AtLeast(8);
    };
    let Some(end) = usize::try_from(u64::from_le_bytes(length))
        .ok()
        .filter(|&n| n <= MAX_HEADER)
        .map(|n| n + 8)
    else {
        return Extent::Total(head.len());
    };
    let Some(text) = head.get(8..end) else {
        return Extent::AtLeast(end);
    };
    serde_json::from_slice::<BTreeMap<String, Value>>(text)
        .ok()
        .and_then(|header| {
            header
                .values()
                .filter_map(|t| t.get("data_offsets")?.get(1)?.as_u64())
                .max()
        })
        .and_then(|data| usize::try_from(data).ok())
        .map_or(Extent::Total(head.len()), |data| {
            Extent::Total(end.saturating_add(data))
        })
}

fn open<'a>(bytes: &'a [u8], name: &str) -> Result<(SafeTensors<'a>, HashMap<String, String>)> {
    let not_safetensors = |e: safetensors::SafeTensorError| {
        bad(
            name,
            format!("is not a readable safetensors file ({e}); is it truncated or another format?"),
        )
    };
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(not_safetensors)?;
    let tensors = SafeTensors::deserialize(bytes).map_err(not_safetensors)?;
    Ok((tensors, header.metadata().clone().unwrap_or_default()))
}

fn read_checkpoint(
    tensors: &SafeTensors<'_>,
    meta: &HashMap<String, String>,
    name: &str,
) -> Result<ModelCheckpoint> {
    let architecture: Vec<Value> = meta
        .get("architecture")
        .and_then(|a| serde_json::from_str(a).ok())
        .ok_or_else(|| {
            bad(
                name,
                "has no readable `architecture` metadata; was it written by downhill?",
            )
        })?;
    let layers = architecture
        .iter()
        .map(|l| {
            Layer::read(l)?.ok_or_else(|| {
                bad(
                    name,
                    format!("has an unreadable layer in its architecture: {l}"),
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let model = ModelSpec::new(layers)?;
    let loss: Loss = meta.get("loss").map(String::as_str).unwrap_or("").parse()?;
    let parameters = read_parameters(tensors, &model, "", (name, true))?;
    let standardizer = statistics(meta, name, "feature", model.inputs(), "inputs")?;
    let target_standardizer = statistics(meta, name, "target", model.outputs(), "outputs")?;
    Ok(ModelCheckpoint {
        model,
        loss,
        parameters,
        standardizer,
        target_standardizer,
    })
}

/// The `{what}_mean` and `{what}_std` statistics in `meta`, when present: `width` finite means
/// and finite standard deviations above 0 (`width` is the model's number of `unit`).
fn statistics(
    meta: &HashMap<String, String>,
    name: &str,
    what: &str,
    width: usize,
    unit: &str,
) -> Result<Option<Standardizer>> {
    let stats = |key: &str| -> Result<Option<Array1<f32>>> {
        meta.get(key)
            .map(|v| {
                serde_json::from_str::<Vec<f32>>(v)
                    .map(Array1::from_vec)
                    .map_err(|_| bad(name, format!("has unreadable `{key}`")))
            })
            .transpose()
    };
    let (mean_key, std_key) = (format!("{what}_mean"), format!("{what}_std"));
    match (stats(&mean_key)?, stats(&std_key)?) {
        (Some(mean), Some(std)) if mean.len() == width && std.len() == width => {
            if let Some(i) = mean.iter().position(|v| !v.is_finite()) {
                return Err(bad(
                    name,
                    format!(
                        "has `{mean_key}` {} at index {i}; a mean must be finite",
                        mean[i]
                    ),
                ));
            }
            if let Some(i) = std.iter().position(|&s| !(s.is_finite() && s > 0.0)) {
                return Err(bad(
                    name,
                    format!(
                        "has `{std_key}` {} at index {i}; a standard deviation must be finite \
                         and above 0",
                        std[i]
                    ),
                ));
            }
            Ok(Some(Standardizer { mean, std }))
        }
        (None, None) => Ok(None),
        _ => Err(bad(
            name,
            format!("has {what} statistics that do not match the model's {width} {unit}"),
        )),
    }
}
