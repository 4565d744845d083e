//! `downhill tune`: the matrix products of a model timed afresh on this GPU, and the table of
//! what each timing found.

use clap::{Args, FromArgMatches};
use downhill::gpu::{TunedShape, Tuning};
use downhill::tools::{RunInfo, retune};
use downhill::{Error, GpuContext, Result};
use serde_json::json;

use super::args::{BatchArgs, OptimizerArgs, TuneArgs};
use super::bench::emit;
use super::common::adapter_request;
use super::prepare::{RunFlags, prepare};
use crate::cli::output::errln;

/// Microseconds, as the table shows them.
fn micros(time: Option<std::time::Duration>) -> String {
    time.map_or(String::new(), |t| format!("{:.1}", t.as_secs_f64() * 1e6))
}

/// The optimizer's flags at their defaults: the products a model trains with do not depend on
/// its optimizer, but a model is prepared with one.
fn default_optimizer() -> Result<OptimizerArgs> {
    let matches = OptimizerArgs::augment_args(clap::Command::new("tune"))
        .try_get_matches_from(["tune"])
        .and_then(|m| OptimizerArgs::from_arg_matches(&m));
    matches.map_err(|e| Error::Usage(e.to_string()))
}

/// One row of the table: the product, its class, the tile cached before and the one chosen,
/// the fixed default, their times per product, and how many candidates were timed.
fn row(shape: &TunedShape) -> Vec<String> {
    let (default, _) = shape.candidates[0];
    let speedup = match (shape.default_time(), shape.chosen_time()) {
        (Some(d), Some(c)) if !c.is_zero() => format!("{:.2}", d.as_secs_f64() / c.as_secs_f64()),
        _ => String::new(),
    };
    let timed = shape.candidates.iter().filter(|(_, t)| t.is_some()).count();
    vec![
        shape.product.clone(),
        shape.class.clone(),
        shape
            .previous
            .map_or(String::new(), |t| t.name().to_string()),
        shape.chosen.name().to_string(),
        micros(shape.chosen_time()),
        default.name().to_string(),
        micros(shape.default_time()),
        speedup,
        format!("{timed}/{}", shape.candidates.len()),
    ]
}

/// `downhill tune`: builds the model's engine on a context that times every product shape
/// afresh, then prints what each timing found and where the choices were kept.
pub fn run(a: &TuneArgs) -> Result<()> {
    if a.batch_size == 0 || a.models == 0 {
        return Err(Error::Usage(
            "--batch-size and --models must be at least 1".into(),
        ));
    }
    if a.gpu.no_autotune {
        return Err(Error::Usage(
            "tune times the matrix products' tiles; --no-autotune (the fixed tiles, untimed) \
             contradicts it: drop it"
                .into(),
        ));
    }
    let optimizer = default_optimizer()?;
    let batches = BatchArgs {
        batch_size: a.batch_size,
        no_shuffle: false,
        drop_last: false,
        seed: 0,
    };
    let p = prepare(&RunFlags {
        on_cpu: false,
        ..RunFlags::new(&a.data, &a.model, &optimizer, &batches)
    })?;
    let request = adapter_request(&a.gpu);
    let cache = match &request.tuning {
        Tuning::Autotune { cache } => cache.clone(),
        _ => None,
    };
    let ctx = GpuContext::new(&request)?;
    let shapes = retune(&ctx, &p.setup, &p.start, a.models, a.batch_size)?;
    let widths: Vec<String> = p
        .setup
        .model
        .widths()
        .iter()
        .map(|w| w.to_string())
        .collect();
    let pack = match a.models {
        1 => String::new(),
        k => format!(", {k} models side by side"),
    };
    let info = RunInfo::new(
        Some(&ctx),
        format!("{} at batch {}{pack}", widths.join("-"), a.batch_size),
        p.name.clone(),
    );
    let header = [
        "product",
        "class",
        "cached",
        "chosen",
        "chosen µs",
        "default",
        "default µs",
        "speed-up",
        "timed",
    ];
    let cells: Vec<Vec<String>> = shapes.iter().map(row).collect();
    let json_rows = shapes
        .iter()
        .map(|s| {
            json!({
                "product": s.product, "class": s.class,
                "cached": s.previous.map(|t| t.name()), "chosen": s.chosen.name(),
                "candidates": s.candidates.iter().map(|(tile, time)| json!({
                    "tile": tile.name(),
                    "ns_per_product": time.map(|t| t.as_nanos() as f64),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let notes = [
        (
            "product",
            "op(A) by op(B) as the engine runs it, at the largest batch".into(),
        ),
        (
            "class",
            "the shape class the choice is cached under (sizes rounded up to powers of two)".into(),
        ),
        (
            "cached",
            "the tile the cache held for the class before (- where it held none)".into(),
        ),
        ("chosen", "the fastest candidate, now in the cache".into()),
        (
            "chosen µs",
            "its fastest time per product over interleaved rounds".into(),
        ),
        (
            "default",
            "the fixed default tile (--no-autotune), timed in every round another is".into(),
        ),
        (
            "default µs",
            "its fastest time per product in the same rounds".into(),
        ),
        ("speed-up", "default µs over chosen µs".into()),
        (
            "timed",
            "candidates timed of those that run on this adapter".into(),
        ),
    ];
    emit(a.format, &info, &header, &cells, json_rows, &notes);
    match cache {
        Some(path) => errln!("choices kept in {}", path.display()),
        None => errln!(
            "no cache folder ($DOWNHILL_CACHE_DIR, $XDG_CACHE_HOME or $HOME): these choices \
             lasted for this run only"
        ),
    }
    Ok(())
}
