//! `downhill lr-find` end to end: the suggested rate trains the default model at least as well
//! as the default rate; the curve written as JSON and CSV; the plot on a log axis; the same test
//! on the GPU engine; flags that do not apply refused.

mod common;

use std::path::Path;

use serde_json::Value;

use common::binary::{downhill, ok};

/// The number after `key ` on its line of `out`, without a trailing `%`.
fn figure(out: &str, key: &str) -> f64 {
    out.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no `{key}` line in {out:?}"))
        .trim_end_matches('%')
        .parse()
        .unwrap()
}

#[test]
fn the_suggested_rate_trains_the_default_model_at_least_as_well_as_the_default_rate() {
    let dir = tempfile::tempdir().unwrap();
    // The default 200 steps: the moving average (β = 0.98) lags about 49 steps behind the loss,
    // which at 100 steps over eight decades of rates would be four decades, and the steepest
    // descent of the smoothed curve would land past the rates that train well.
    let found = ok(&["lr-find", "--device", "cpu", "--quiet"], dir.path());
    let lr = figure(&found, "suggested lr");
    let hint = found
        .lines()
        .find_map(|l| l.strip_prefix("train with --lr "))
        .unwrap_or_else(|| panic!("no hint in {found:?}"));
    assert_eq!(hint.parse::<f64>().unwrap(), lr, "{found}");
    assert!(lr > 1e-7 && lr < 10.0, "{lr}");

    let default = figure(
        &ok(&["train", "--device", "cpu", "--quiet"], dir.path()),
        "val_accuracy",
    );
    let suggested = figure(
        &ok(
            &["train", "--device", "cpu", "--quiet", "--lr", hint],
            dir.path(),
        ),
        "val_accuracy",
    );
    assert!(
        suggested >= default,
        "--lr {hint}: val_accuracy {suggested}% < the default rate's {default}%"
    );
}

/// The test on the digits, 60 steps from 1e-6 to 10 by default, with `extra` flags.
fn digits(extra: &[&str]) -> Vec<String> {
    [
        "lr-find",
        "--dataset",
        "digits",
        "--standardize",
        "--steps",
        "60",
        "--start-lr",
        "1e-6",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect()
}

fn run(args: &[String], dir: &Path) -> String {
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>(), dir)
}

#[test]
fn the_curve_is_written_as_json_and_csv_and_plotted_on_a_log_axis() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &digits(&[
            "--device",
            "cpu",
            "--output",
            "curve.json",
            "--plot",
            "lr.svg",
        ]),
        dir.path(),
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("curve.json")).unwrap())
            .unwrap();
    let points = json["points"].as_array().unwrap();
    assert!(points.len() >= 10 && points.len() <= 60, "{}", points.len());
    assert_eq!(points[0]["lr"], 1e-6);
    for (i, p) in points.iter().enumerate() {
        let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["loss", "lr", "smoothed_loss", "step"]);
        assert_eq!(p["step"], i as u64);
    }
    assert!(
        points
            .windows(2)
            .all(|w| w[1]["lr"].as_f64() > w[0]["lr"].as_f64()),
        "the learning rate rises"
    );
    // lr_i = start · (end/start)^(i/(N−1)).
    let lr = |i: usize| 1e-6 * (10.0f64 / 1e-6).powf(i as f64 / 59.0);
    for (i, p) in points.iter().enumerate() {
        assert!((p["lr"].as_f64().unwrap() / lr(i) - 1.0).abs() < 1e-9);
    }
    let suggested = json["suggested_lr"].as_f64().unwrap();
    assert_eq!(
        figure(&out, "suggested lr"),
        format!("{suggested:.1e}").parse::<f64>().unwrap()
    );
    // The runaway at the end of a range up to lr 10 stops the test early.
    let stopped = json["stopped_at"].as_u64().expect("Adam at lr 10 diverges");
    assert_eq!(points.len() as u64, stopped + 1);

    // The plot: the loss against the learning rate on a log axis, the suggestion marked.
    let svg = std::fs::read_to_string(dir.path().join("lr.svg")).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(100)]);
    assert!(
        svg.contains("learning rate, log scale"),
        "the x axis is logarithmic"
    );
    assert!(svg.contains(&format!("suggested lr {suggested:.1e}")));

    // The same run as CSV: the same columns and values.
    run(
        &digits(&["--device", "cpu", "--output", "curve.csv"]),
        dir.path(),
    );
    let csv = std::fs::read_to_string(dir.path().join("curve.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("step,lr,loss,smoothed_loss"));
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), points.len());
    // serde_json's float parsing may be off by an ulp: equal to 1e-12.
    let same = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs();
    for (row, p) in rows.iter().zip(points) {
        assert_eq!(row[0], p["step"].as_f64().unwrap());
        assert!(same(row[1], p["lr"].as_f64().unwrap()), "{row:?} {p}");
        for (column, key) in [(2, "loss"), (3, "smoothed_loss")] {
            if let Some(value) = p[key].as_f64() {
                assert!(
                    same(row[column], value),
                    "the same seed, the same curve: {row:?} {p}"
                );
            }
        }
    }
}

#[test]
fn the_gpu_engine_draws_the_same_curve_as_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    common::gpu();
    let curve = |device: &str| -> Vec<Value> {
        let file = format!("{device}.json");
        run(
            &digits(&["--device", device, "--end-lr", "1e-2", "--output", &file]),
            dir.path(),
        );
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(&file)).unwrap())
                .unwrap();
        json["points"].as_array().unwrap().clone()
    };
    let (gpu, cpu) = (curve("gpu"), curve("cpu"));
    assert_eq!(gpu.len(), cpu.len());
    for (g, c) in gpu.iter().zip(&cpu) {
        let (g, c) = (g["loss"].as_f64().unwrap(), c["loss"].as_f64().unwrap());
        // Sixty steps of f32 training with sums in different orders; a loss near 0.1–2.3.
        assert!((g - c).abs() <= 1e-3 * c.abs().max(1.0), "gpu {g} cpu {c}");
    }
}

#[test]
fn flags_that_do_not_apply_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    // Train's flags that mean nothing here are not lr-find's: the command line refuses them.
    for flag in [
        &["--lr", "0.1"][..],
        &["--epochs", "3"],
        &["--save", "m.safetensors"],
    ] {
        let out = downhill(
            &[&["lr-find", "--device", "cpu"], flag].concat(),
            dir.path(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag:?}: {stderr}");
        assert!(stderr.contains("unexpected argument"), "{flag:?}: {stderr}");
    }
    for (args, says) in [
        (&["--output", "curve.txt"][..], ".json or a .csv"),
        (
            &["--start-lr", "1", "--end-lr", "0.1"],
            "--end-lr 0.1 must be a number above",
        ),
        (&["--steps", "1"], "at least 2"),
    ] {
        let out = downhill(
            &[&["lr-find", "--device", "cpu"], args].concat(),
            dir.path(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
