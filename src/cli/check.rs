//! `downhill check`.

use downhill::data::scheduler::Order;
use downhill::pack::Separate;
use downhill::sweep::Grid;
use downhill::tools::{CheckReport, Difference, check};
use downhill::{Batch, Error, GpuContext, GpuPack, Pack, PackSetup, Result, Tolerance};
use serde_json::json;

use super::args::{CheckArgs, CheckFormat};
use super::common::adapter_request;
use super::prepare::{RunFlags, in_memory, prepare};
use crate::cli::output::outln;

/// Adds `delta` to one entry of the first model's parameters, from `TENSOR:INDEX:DELTA`.
fn perturb(pack: &mut dyn Pack, spec: &str) -> Result<()> {
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
    let names: Vec<String> = params.named_tensors().into_iter().map(|t| t.name).collect();
    let position = names.iter().position(|n| n == tensor).ok_or_else(|| {
        Error::Usage(format!(
            "--perturb: no tensor `{tensor}`; the model has {names:?}"
        ))
    })?;
    let layer = &mut params.layers[position / 2];
    let values = if position % 2 == 0 {
        layer.weight.as_slice_mut()
    } else {
        layer.bias.as_slice_mut()
    }
    .expect("parameters read back are contiguous");
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
                    json!({"model": k, "label": label, "passed": report.passed, "steps": steps})
                })
                .collect();
            let value = json!({
                "gpu": first.tested, "cpu": first.reference,
                "tolerance": {"rel": first.tolerance.rel, "abs": first.tolerance.abs},
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
            for (k, (report, label)) in reports.iter().zip(labels).enumerate() {
                if reports.len() > 1 {
                    outln!("\nmodel {k} ({label}), packed on the GPU, against it alone on the CPU");
                }
                print_steps(report);
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
    let mut gpu = GpuPack::new(&ctx, setup.clone(), batch_size)?;
    let mut cpu = Separate::cpu(&setup)?;
    for pack in [&mut gpu as &mut dyn Pack, &mut cpu] {
        pack.set_clip_norm(a.clip_norm)?;
    }
    if let Some(spec) = &a.perturb {
        perturb(&mut gpu, spec)?;
    }
    let order = Order::new(
        rows.rows(),
        a.batches.batch_size,
        !a.batches.no_shuffle,
        a.batches.drop_last,
        a.batches.seed,
    )?;
    let per_epoch = order.batches_per_epoch();
    let batches: Vec<_> = (0..a.steps)
        .map(|step| {
            let permutation = order.permutation((step / per_epoch) as u64);
            let batch: Vec<usize> = order
                .batch(&permutation, step % per_epoch)
                .iter()
                .map(|&i| i as usize)
                .collect();
            rows.subset(&batch)
        })
        .collect();
    let reports = check(
        &mut gpu,
        &mut cpu,
        batches
            .iter()
            .map(|b| Batch::new(b.features.view(), b.targets.view())),
        Tolerance {
            rel: a.rel,
            abs: a.abs,
        },
    )?;
    print(&reports, &labels, a.format);
    Ok(reports.iter().all(|r| r.passed))
}
