//! A checkpoint's tensors: a model's parameters (and optimizer state alike) to safetensors bytes
//! and back, each checked against the model's list, and batch norm's count of training passes
//! as PyTorch's `norms.{i}.num_batches_tracked` (int64, shape `[]`).

use std::collections::{BTreeMap, HashMap};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::batch_norm::batches_tracked_name;
use crate::model::{Layer, ModelSpec, Parameters};

/// The error for a file `path` that is wrong as `message` says.
pub(super) fn bad(path: &str, message: impl Into<String>) -> Error {
    Error::Data {
        source_name: path.to_string(),
        message: message.into(),
    }
}

/// One tensor to write: its name, shape, dtype and little-endian bytes.
pub(super) type RawTensor = (String, Vec<usize>, Dtype, Vec<u8>);

/// Named tensors to bytes.
pub(super) fn serialize(
    tensors: Vec<RawTensor>,
    meta: HashMap<String, String>,
    path: &str,
) -> Result<Vec<u8>> {
    let views = tensors
        .iter()
        .map(|(n, shape, dtype, data)| {
            TensorView::new(*dtype, shape.clone(), data)
                .map(|v| (n.clone(), v))
                .map_err(|e| bad(path, format!("could not describe tensor {n}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes = safetensors::serialize(views, Some(meta))
        .map_err(|e| bad(path, format!("could not be serialised: {e}")))?;
    with_sorted_header(bytes).ok_or_else(|| {
        bad(
            path,
            "could not be serialised: its header did not read back",
        )
    })
}

/// The same safetensors bytes with the JSON header's keys sorted. The crate writes metadata from a
/// `HashMap`, whose order changes from process to process; sorted, the same checkpoint is the
/// same bytes every time. The sorted header has the same length, so the data does not move.
fn with_sorted_header(mut bytes: Vec<u8>) -> Option<Vec<u8>> {
    let len = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let text = bytes.get(8..8usize.checked_add(len)?)?;
    let header: BTreeMap<String, BTreeMap<String, Value>> =
        serde_json::from_slice(text.trim_ascii_end()).ok()?;
    let mut sorted = serde_json::to_vec(&header).ok()?;
    if sorted.len() > len {
        return None;
    }
    sorted.resize(len, b' ');
    bytes[8..8 + len].copy_from_slice(&sorted);
    Some(bytes)
}

/// Every tensor of `p` named with `prefix`, as f32; with `count`, also each batch norm's
/// `num_batches_tracked` (int64, shape `[]`) for `model`, all holding `p`'s count of training
/// passes.
pub(super) fn parameter_tensors(
    prefix: &str,
    p: &Parameters,
    model: &ModelSpec,
    count: bool,
) -> Vec<RawTensor> {
    let mut out: Vec<RawTensor> = p
        .named_tensors()
        .iter()
        .map(|t| {
            (
                format!("{prefix}{}", t.name),
                t.shape.clone(),
                Dtype::F32,
                t.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    if count {
        let tracked = i64::try_from(p.batches_tracked()).unwrap_or(i64::MAX);
        out.extend(batch_norm_blocks(model).map(|block| {
            (
                format!("{prefix}{}", batches_tracked_name(block)),
                Vec::new(),
                Dtype::I64,
                tracked.to_le_bytes().to_vec(),
            )
        }));
    }
    out
}

/// The blocks of `model`'s batch norms.
pub(super) fn batch_norm_blocks(model: &ModelSpec) -> impl Iterator<Item = usize> + '_ {
    model
        .layers()
        .iter()
        .zip(model.blocks())
        .filter(|(layer, _)| matches!(layer, Layer::BatchNorm(_)))
        .map(|(_, block)| block)
}

/// The count of training passes the batch norms' `{prefix}norms.{i}.num_batches_tracked` hold
/// (int64 or int32, shape `[]`, the same in every norm); 0 for a model with no batch norm.
fn read_batches_tracked(
    tensors: &SafeTensors<'_>,
    model: &ModelSpec,
    prefix: &str,
    name: &str,
) -> Result<u64> {
    let mut count = None;
    for block in batch_norm_blocks(model) {
        let tensor = format!("{prefix}{}", batches_tracked_name(block));
        let view = tensors.tensor(&tensor).map_err(|_| {
            bad(
                name,
                format!("has no tensor `{tensor}`, which the architecture needs"),
            )
        })?;
        let value = match (view.dtype(), view.data()) {
            (Dtype::I64, &[a, b, c, d, e, f, g, h]) => i64::from_le_bytes([a, b, c, d, e, f, g, h]),
            (Dtype::I32, &[a, b, c, d]) => i64::from(i32::from_le_bytes([a, b, c, d])),
            (dtype, _) => {
                return Err(bad(
                    name,
                    format!(
                        "tensor `{tensor}` is {dtype:?} of shape {:?}; a count of batches is one \
                         int64",
                        view.shape()
                    ),
                ));
            }
        };
        let value = u64::try_from(value).map_err(|_| {
            bad(
                name,
                format!("tensor `{tensor}` holds {value}; a count of batches is at least 0"),
            )
        })?;
        match count {
            Some(seen) if seen != value => {
                return Err(bad(
                    name,
                    format!(
                        "tensor `{tensor}` holds {value} but an earlier norm counted {seen} \
                         batches; every batch norm of a model counts the same training passes"
                    ),
                ));
            }
            _ => count = Some(value),
        }
    }
    Ok(count.unwrap_or(0))
}

/// `model`'s tensors named with `prefix` from `tensors` (of file `name`), each checked for its
/// dtype, shape and finite values; with `count`, also its batch norms' count of training passes.
pub(super) fn read_parameters(
    tensors: &SafeTensors<'_>,
    model: &ModelSpec,
    prefix: &str,
    (name, count): (&str, bool),
) -> Result<Parameters> {
    let read = |tensor: String, shape: Vec<usize>| -> Result<Vec<f32>> {
        let view = tensors.tensor(&tensor).map_err(|_| {
            bad(
                name,
                format!("has no tensor `{tensor}`, which the architecture needs"),
            )
        })?;
        if view.dtype() != Dtype::F32 {
            return Err(bad(
                name,
                format!(
                    "tensor `{tensor}` is {:?}; downhill reads F32",
                    view.dtype()
                ),
            ));
        }
        if view.shape() != shape.as_slice() {
            return Err(bad(
                name,
                format!(
                    "tensor `{tensor}` has shape {:?} but the architecture needs {shape:?}",
                    view.shape()
                ),
            ));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if let Some(at) = values.iter().position(|v| !v.is_finite()) {
            return Err(bad(
                name,
                format!(
                    "tensor `{tensor}` holds {} at index {}; a checkpoint holds finite values \
                     only: this one is damaged or was written by other software from a run that \
                     diverged; start from another checkpoint",
                    values[at],
                    index_of(at, &shape)
                ),
            ));
        }
        Ok(values)
    };
    let values = model
        .tensor_shapes()
        .into_iter()
        .map(|(tensor, shape)| read(format!("{prefix}{tensor}"), shape))
        .collect::<Result<Vec<_>>>()?;
    let mut params = Parameters::from_values(model, values);
    if count {
        params.set_batches_tracked(read_batches_tracked(tensors, model, prefix, name)?);
    }
    Ok(params)
}

/// The index `[i, j, ...]` of element `flat` of a row-major array of `shape`.
fn index_of(mut flat: usize, shape: &[usize]) -> String {
    let mut index = vec![0; shape.len()];
    for (i, &d) in shape.iter().enumerate().rev() {
        if d > 0 {
            index[i] = flat % d;
            flat /= d;
        }
    }
    format!("{index:?}")
}
