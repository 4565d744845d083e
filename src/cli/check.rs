//! `downhill check`.

use downhill::tools::{CheckReport, Difference, check};
use downhill::train::sweep::Grid;
use downhill::train::{TrainConfig, TrainData};
use downhill::{CpuEngine, Engine, Error, GpuContext, GpuEngine, PackSetup, Result, Tolerance};
use serde_json::json;

use super::args::{CheckArgs, CheckFormat};
use super::common::adapter_request;
use super::prepare::{RunFlags, in_memory, prepare};
use crate::cli::output::outln;

/// Adds `delta` to one entry of the first model's parameters, from `TENSOR:INDEX:DELTA`.
fn perturb(pack: &mut dyn Engine, spec: &str) -> Result<()> {
    let bad = || {
        Error::Usage(format!(
            "--perturb {spec}: expected TENSOR:INDEX:DELTA, e.g. layers.1.weight:3:0.01"
        ))
    };
    let mut parts = spec.rsplitn(3, ':');
    let delta: f32 = parts.next().and_then(|d| d.parse().ok()).ok_or_else(bad)?;
    let index: usize = parts.next().and_then(|i| i.parse().ok()).ok_or_else(bad)?;
    let tensor = parts.next().ok_or_else(bad)?;
    let mut params = pack.parameters(0)?;
    let names: Vec<&str> = params
        .named_tensors()
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    if !names.contains(&tensor) {
        return Err(Error::Usage(format!(
            "--perturb: no tensor `{tensor}`; the model has {names:?}"
        )));
    }
    let (_, values) = params
        .tensors_mut()
        .find(|(name, _)| *name == tensor)
        .expect("a tensor of the model, checked above");
    let len = values.len();
    *values.get_mut(index).ok_or_else(|| {
        Error::Usage(format!(
            "--perturb: `{tensor}` has {len} entries, no index {index}"
        ))
    })? += delta;
    pack.set_parameters(0, &params)
}

fn json_difference(d: &Difference) -> serde_json::Value {
    json!({
        "max_abs": d.max_abs, "max_rel": d.max_rel, "worst_tensor": d.tensor, "worst_index": d.index,
        "gpu": d.tested, "cpu": d.reference, "passed": d.passed,
    })
}

/// Prints one report per model (`labels` name them when there are several).
fn print(reports: &[CheckReport], labels: &[String], format: CheckFormat) {
    let passed = reports.iter().all(|r| r.passed);
    let first = &reports[0];
    match format {
        CheckFormat::Json => {
            let models: Vec<_> = reports
                .iter()
                .zip(labels)
                .enumerate()
                .map(|(k, (report, label))| {
                    let steps: Vec<_> = report
                        .steps
                        .iter()
                        .map(|s| json!({"step": s.step, "loss": json_difference(&s.loss), "gradients": json_difference(&s.gradients), "parameters": json_difference(&s.parameters)}))
                        .collect();
                    let diverged = report
                        .diverged
                        .as_ref()
                        .map(|d| json!({"step": d.step, "what": d.what}));
                    json!({"model": k, "label": label, "passed": report.passed, "diverged": diverged, "steps": steps})
                })
                .collect();
            let value = json!({
                "gpu": first.tested, "cpu": first.reference,
                "tolerance": {"rel": first.tolerance.rel, "abs": first.tolerance.abs},
                "values_not_compared": first.values_not_compared,
                "passed": passed, "models": models, "version": env!("CARGO_PKG_VERSION"),
            });
            outln!("{value:#}");
        }
        CheckFormat::Table => {
            outln!(
                "tested:    {}\nreference: {}\ntolerance: |gpu - cpu| <= {} + {} * |cpu|",
                first.tested,
                first.reference,
                first.tolerance.abs,
                first.tolerance.rel
            );
            if !first.values_not_compared.is_empty() {
                outln!(
                    "values not compared after updates: {} (a bias before a batch norm has no \
                     gradient in exact arithmetic, and adaptive optimizers turn its f32 rounding \
                     noise into steps; their gradients are compared)",
                    first.values_not_compared.join(", ")
                );
            }
            for (k, (report, label)) in reports.iter().zip(labels).enumerate() {
                if reports.len() > 1 {
                    outln!("\nmodel {k} ({label}), packed on the GPU, against it alone on the CPU");
                }
                print_steps(report);
                if let Some(d) = &report.diverged {
                    outln!(
                        "the model was found diverged at step {}: {}; the steps after compare a run that \
                         no longer trains (try a smaller --lr)",
                        d.step,
                        d.what
                    );
                }
            }
            outln!(
                "\n{}",
                match (passed, reports.len()) {
                    (true, 1) => "check passed".to_string(),
                    (true, n) => format!("check passed: all {n} packed models"),
                    (false, _) => "check FAILED".to_string(),
                }
            );
        }
    }
}

/// One model's steps as a table.
fn print_steps(report: &CheckReport) {
    outln!();
    outln!(
        "{:>5}  {:>11} {:>11}  {:>11} {:>11} {:<22}  {:>11} {:>11} {:<22}  result",
        "step",
        "loss abs",
        "loss rel",
        "grad abs",
        "grad rel",
        "worst gradient",
        "param abs",
        "param rel",
        "worst parameter",
    );
    for s in &report.steps {
        let ok = s.loss.passed && s.gradients.passed && s.parameters.passed;
        outln!(
            "{:>5}  {:>11.3e} {:>11.3e}  {:>11.3e} {:>11.3e} {:<22}  {:>11.3e} {:>11.3e} {:<22}  {}",
            s.step,
            s.loss.max_abs,
            s.loss.max_rel,
            s.gradients.max_abs,
            s.gradients.max_rel,
            format!("{}[{}]", s.gradients.tensor, s.gradients.index),
            s.parameters.max_abs,
            s.parameters.max_rel,
            format!("{}[{}]", s.parameters.tensor, s.parameters.index),
            if ok { "pass" } else { "FAIL" }
        );
    }
}

/// Runs the check; `Ok(false)` when the engines disagree.
pub fn run(a: &CheckArgs) -> Result<bool> {
    if a.steps == 0 {
        return Err(Error::Usage("--steps must be at least 1".into()));
    }
    let p = prepare(&RunFlags {
        init: a.init.init.as_deref(),
        lr: &a.lr.lr,
        restarts: a.restarts,
        ..RunFlags::new(&a.data, &a.model, &a.optimizer, &a.batches)
    })?;
    let rows = in_memory(p.data);
    // One model per combination of the hyperparameter lists and restarts, as a sweep makes them.
    let grid = Grid {
        lr: a.lr.lr.clone(),
        momentum: a.optimizer.momentum.clone(),
        weight_decay: a.optimizer.weight_decay.clone(),
        restarts: a.restarts,
        seed: a.batches.seed,
    };
    let start = a.init.init.is_some().then_some(&p.start);
    let (settings, members): (Vec<_>, Vec<_>) = grid
        .members(&p.setup.optimizer, &p.setup.model, start)?
        .into_iter()
        .unzip();
    let labels: Vec<String> = settings.iter().map(|s| s.label(&grid)).collect();
    let setup = PackSetup {
        model: p.setup.model.clone(),
        loss: p.setup.loss,
        members,
    };
    let ctx = GpuContext::new(&adapter_request(&a.gpu))?;
    let batch_size = a.batches.batch_size.min(rows.rows().max(1));
    let mut gpu = GpuEngine::pack(&ctx, setup.clone(), batch_size)?;
    let mut cpu = CpuEngine::pack(&setup)?;
    if let Some(spec) = &a.perturb {
        perturb(&mut gpu, spec)?;
    }
    // The run the steps are taken from: --steps optimizer steps of the flags' batches, with
    // nothing read back between them.
    let config = TrainConfig {
        epochs: a.steps as u64,
        max_steps: Some(a.steps as u64),
        batch_size: a.batches.batch_size,
        accumulate: a.accumulate,
        shuffle: !a.batches.no_shuffle,
        drop_last: a.batches.drop_last,
        seed: a.batches.seed,
        clip_norm: a.clip_norm,
        log_every: u64::MAX,
        divergence_threshold: None,
        ..TrainConfig::default()
    };
    let reports = check(
        &mut gpu,
        &mut cpu,
        &TrainData::Memory(rows),
        &config,
        Tolerance {
            rel: a.rel,
            abs: a.abs,
        },
    )?;
    print(&reports, &labels, a.format);
    Ok(reports.iter().all(|r| r.passed))
}
