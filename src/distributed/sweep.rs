//! A sweep split across the ranks of an MPI job: rank `r` trains the `r`-th contiguous share of
//! the grid's models side by side on its own device ([`Share::of`] over the models, the first
//! `M mod N` ranks taking one more), with no communication while training; at the end every
//! rank's runs are gathered to rank 0 in the grid's order, the best model is chosen over all of
//! them, and its parameters are sent from the rank that trained it.

use mpi::datatype::PartitionMut;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::model::{ModelSpec, Parameters};
use crate::train::{Divergence, EpochRecord, ModelRun};

/// Every rank's model runs, on rank 0, in rank order (so in the grid's order when each rank
/// holds its contiguous share of the models), with the most steps any rank took; `None` on the other
/// ranks. Collective.
pub fn gather_runs(
    comm: &SimpleCommunicator,
    runs: &[ModelRun],
    steps: u64,
) -> Result<Option<(Vec<ModelRun>, u64)>> {
    let mine = serde_json::to_vec(&json!({
        "steps": steps,
        "runs": runs.iter().map(encode_run).collect::<Vec<_>>(),
    }))
    .map_err(|e| gathering(e.to_string()))?;
    let root = comm.process_at_rank(0);
    let length = mine.len() as i32;
    if comm.rank() != 0 {
        root.gather_into(&length);
        root.gather_varcount_into(&mine[..]);
        return Ok(None);
    }
    let mut lengths = vec![0i32; comm.size() as usize];
    root.gather_into_root(&length, &mut lengths[..]);
    let offsets: Vec<i32> = lengths
        .iter()
        .scan(0, |at, &n| {
            let start = *at;
            *at += n;
            Some(start)
        })
        .collect();
    let mut all = vec![0u8; lengths.iter().map(|&n| n as usize).sum()];
    {
        let mut partition = PartitionMut::new(&mut all[..], &lengths[..], &offsets[..]);
        root.gather_varcount_into_root(&mine[..], &mut partition);
    }
    let (mut gathered, mut most) = (Vec::new(), 0);
    for (&start, &len) in offsets.iter().zip(&lengths) {
        let part: Value = serde_json::from_slice(&all[start as usize..(start + len) as usize])
            .map_err(|e| gathering(e.to_string()))?;
        most = most.max(part["steps"].as_u64().unwrap_or(0));
        for run in part["runs"].as_array().into_iter().flatten() {
            gathered.push(decode_run(run).ok_or_else(|| gathering("a run did not decode".into()))?);
        }
    }
    Ok(Some((gathered, most)))
}

/// Model `best`'s parameters on every rank, sent by `owner`, the rank that trained it, which
/// gives them as `mine`. Collective.
pub fn share_parameters(
    comm: &SimpleCommunicator,
    owner: usize,
    mine: Option<Parameters>,
    model: &ModelSpec,
) -> Parameters {
    let mut params = mine.unwrap_or_else(|| Parameters::zeros(model));
    let sender = comm.process_at_rank(owner as i32);
    let mut tracked = params.batches_tracked();
    sender.broadcast_into(&mut tracked);
    for (_, values) in params.tensors_mut() {
        sender.broadcast_into(values);
    }
    params.set_batches_tracked(tracked);
    params
}

/// An error in gathering the runs (a bug, or ranks of different builds).
fn gathering(message: String) -> Error {
    Error::Data {
        source_name: "the ranks' sweep results".into(),
        message: format!("{message}; do all ranks run the same downhill build?"),
    }
}

/// `x`'s bits, which survive JSON whatever `x` (NaN and infinities included).
fn bits(x: f64) -> Value {
    json!(x.to_bits())
}

/// The number [`bits`] encoded.
fn from_bits(v: &Value) -> Option<f64> {
    v.as_u64().map(f64::from_bits)
}

/// An optional number as [`bits`], or null.
fn maybe_bits(x: Option<f64>) -> Value {
    x.map_or(Value::Null, bits)
}

/// The optional number [`maybe_bits`] encoded.
fn from_maybe_bits(v: &Value) -> Option<Option<f64>> {
    if v.is_null() {
        Some(None)
    } else {
        from_bits(v).map(Some)
    }
}

/// One model's run as JSON that decodes to the same bits.
fn encode_run(run: &ModelRun) -> Value {
    json!({
        "epochs": run.epochs.iter().map(|r| json!([
            r.epoch, r.step, bits(r.lr), bits(r.train_loss), maybe_bits(r.train_accuracy),
            maybe_bits(r.val_loss), maybe_bits(r.val_accuracy), bits(r.seconds),
            bits(r.samples_per_second),
        ])).collect::<Vec<_>>(),
        "curve": run.curve.iter().map(|&(s, l)| json!([s, bits(l)])).collect::<Vec<_>>(),
        "diverged": run.diverged.as_ref().map(|d| json!([d.step, d.what])),
    })
}

/// The run [`encode_run`] encoded.
fn decode_run(v: &Value) -> Option<ModelRun> {
    let epochs = v["epochs"]
        .as_array()?
        .iter()
        .map(|r| {
            Some(EpochRecord {
                epoch: r[0].as_u64()?,
                step: r[1].as_u64()?,
                lr: from_bits(&r[2])?,
                train_loss: from_bits(&r[3])?,
                train_accuracy: from_maybe_bits(&r[4])?,
                val_loss: from_maybe_bits(&r[5])?,
                val_accuracy: from_maybe_bits(&r[6])?,
                seconds: from_bits(&r[7])?,
                samples_per_second: from_bits(&r[8])?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let curve = v["curve"]
        .as_array()?
        .iter()
        .map(|p| Some((p[0].as_u64()?, from_bits(&p[1])?)))
        .collect::<Option<Vec<_>>>()?;
    let diverged = match &v["diverged"] {
        Value::Null => None,
        d => Some(Divergence {
            step: d[0].as_u64()?,
            what: d[1].as_str()?.to_string(),
        }),
    };
    Some(ModelRun {
        epochs,
        curve,
        diverged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_survives_its_encoding_bit_for_bit() {
        let run = ModelRun {
            epochs: vec![EpochRecord {
                epoch: 1,
                step: 7,
                lr: 0.1,
                train_loss: f64::NAN,
                train_accuracy: Some(0.5),
                val_loss: None,
                val_accuracy: Some(f64::INFINITY),
                seconds: 1.0 / 3.0,
                samples_per_second: 12.5,
            }],
            curve: vec![(3, 2.25), (7, -0.0)],
            diverged: Some(Divergence {
                step: 9,
                what: "the mean loss read back is NaN".into(),
            }),
        };
        let decoded = decode_run(&encode_run(&run)).expect("decodes");
        assert_eq!(format!("{decoded:?}"), format!("{run:?}"));
        assert_eq!(decoded.curve[1].1.to_bits(), (-0.0f64).to_bits());
        assert_eq!(decode_run(&json!({"epochs": [[1]]})), None);
    }
}
