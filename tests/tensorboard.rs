//! `--tensorboard DIR` through the binary, read back by TensorBoard's own Python reader (the
//! `tensorboard` package: its record reader checks every masked CRC32C, and its event
//! multiplexer is what `tensorboard --logdir` serves), so the files are checked by code
//! downhill does not share: `train` and `sweep` runs, a run killed mid-way, a bad folder.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::binary::{downhill, ok};

/// Reads every run under a log folder as `tensorboard --logdir` does, and prints
/// `{run: {"file_version": v, "scalars": {tag: [[step, value], ...]}}}`.
const READER: &str = r#"
import json, sys
from tensorboard.backend.event_processing import event_multiplexer
mux = event_multiplexer.EventMultiplexer()
mux.AddRunsFromDirectory(sys.argv[1])
mux.Reload()
out = {}
for run, tags in mux.Runs().items():
    out[run] = {
        "file_version": mux.GetAccumulator(run).file_version,
        "scalars": {t: [[e.step, e.value] for e in mux.Scalars(run, t)] for t in tags["scalars"]},
    }
print(json.dumps(out))
"#;

/// One run's scalars by tag, as `(step, value)`.
type Scalars = BTreeMap<String, Vec<(u64, f64)>>;

/// Every run under `dir` read back by TensorBoard. Fails (never skips) when python3 or the
/// `tensorboard` package is missing, saying how to get them.
fn tensorboard_read(dir: &Path) -> BTreeMap<String, (f64, Scalars)> {
    let how = "install Python 3 and then `python3 -m pip install tensorboard`, or run \
               scripts/test, which installs the package";
    let out = Command::new("python3")
        .args(["-c", READER])
        .arg(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("these tests read event files with python3, not found: {e}; {how}")
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'tensorboard'"),
        "these tests read event files with the Python package `tensorboard`, which is not \
         installed: {how}"
    );
    assert!(
        out.status.success(),
        "TensorBoard's reader failed:\n{stderr}"
    );
    let runs: BTreeMap<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
    runs.into_iter()
        .map(|(run, v)| {
            let scalars = v["scalars"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(tag, points)| {
                    let points = points
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()))
                        .collect();
                    (tag.clone(), points)
                })
                .collect();
            (run, (v["file_version"].as_f64().unwrap(), scalars))
        })
        .collect()
}

/// `value` as TensorBoard stores it (f32) equals `expected`.
fn assert_f32(what: &str, value: f64, expected: f64) {
    assert_eq!(
        value as f32, expected as f32,
        "{what}: {value} vs {expected}"
    );
}

/// The names of the files in `dir`.
fn files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// `events.out.tfevents.<10-digit seconds>.<host>.<pid>.<n>`.
fn assert_event_file_name(name: &str) {
    let rest = name
        .strip_prefix("events.out.tfevents.")
        .unwrap_or_else(|| panic!("{name}"));
    let parts: Vec<&str> = rest.split('.').collect();
    assert!(parts.len() >= 4, "{name}");
    assert_eq!(parts[0].len(), 10, "{name}");
    let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    assert!(numeric(parts[0]), "{name}");
    assert!(
        numeric(parts[parts.len() - 2]) && numeric(parts[parts.len() - 1]),
        "{name}"
    );
}

#[test]
fn train_logs_losses_accuracies_rate_and_throughput_that_tensorboard_reads() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "train",
        "--device",
        "cpu",
        "--dataset",
        "digits",
        "--standardize",
        "--val-split",
        "0.2",
        "--layers",
        "64,16,10",
        "--epochs",
        "3",
        "--log-every",
        "10",
        "--quiet",
        "--metrics",
        "m.jsonl",
        "--tensorboard",
        "tb",
    ];
    ok(&args, dir.path());
    let names = files(&dir.path().join("tb"));
    assert_eq!(names.len(), 1, "one event file: {names:?}");
    assert_event_file_name(&names[0]);

    let runs = tensorboard_read(&dir.path().join("tb"));
    assert_eq!(runs.len(), 1, "{:?}", runs.keys());
    let (version, scalars) = runs.values().next().unwrap();
    assert_eq!(*version, 2.0, "file_version brain.Event:2");
    let epochs: Vec<Value> = std::fs::read_to_string(dir.path().join("m.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(epochs.len(), 3);
    // Per epoch, the same figures as the metrics log, at the step that ended the epoch.
    for (tag, key) in [
        ("loss/validation", "val_loss"),
        ("accuracy/validation", "val_accuracy"),
        ("accuracy/train", "train_accuracy"),
        ("learning_rate", "lr"),
    ] {
        let points = &scalars[tag];
        assert_eq!(points.len(), 3, "{tag}: {points:?}");
        for (point, epoch) in points.iter().zip(&epochs) {
            assert_eq!(point.0, epoch["step"].as_u64().unwrap(), "{tag}");
            assert_f32(tag, point.1, epoch[key].as_f64().unwrap());
        }
    }
    // The training loss at every read-back (every 10 steps) and at every epoch's end, whose
    // value is the epoch's mean.
    let per_epoch = epochs[0]["step"].as_u64().unwrap();
    let train = &scalars["loss/train"];
    let mut expected_steps: Vec<u64> = (1..=3 * per_epoch)
        .filter(|s| s % 10 == 0 || s % per_epoch == 0)
        .collect();
    expected_steps.dedup();
    assert_eq!(
        train.iter().map(|p| p.0).collect::<Vec<_>>(),
        expected_steps
    );
    for epoch in &epochs {
        let step = epoch["step"].as_u64().unwrap();
        let at = train.iter().find(|p| p.0 == step).unwrap();
        assert_f32("loss/train", at.1, epoch["train_loss"].as_f64().unwrap());
    }
    assert!(train.iter().all(|p| p.1.is_finite() && p.1 > 0.0));
    assert!(
        scalars["samples_per_second"].iter().all(|p| p.1 > 0.0),
        "{:?}",
        scalars["samples_per_second"]
    );
}

#[test]
fn a_sweep_writes_one_run_folder_per_model() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "sweep",
        "--device",
        "cpu",
        "--dataset",
        "digits",
        "--standardize",
        "--val-split",
        "0.2",
        "--layers",
        "64,16,10",
        "--optimizer",
        "sgd",
        "--lr",
        "1e-2,1e-1",
        "--momentum",
        "0.9",
        "--epochs",
        "2",
        "--log-every",
        "20",
        "--quiet",
        "--format",
        "json",
        "--tensorboard",
        "logs/sweep",
    ];
    let report: Value = serde_json::from_str(&ok(&args, dir.path())).unwrap();
    let runs = tensorboard_read(&dir.path().join("logs/sweep"));
    let names: Vec<&String> = runs.keys().collect();
    assert_eq!(names, ["model-00-lr0.01-m0.9", "model-01-lr0.1-m0.9"]);
    for (k, (name, (version, scalars))) in runs.iter().enumerate() {
        assert_eq!(*version, 2.0, "{name}");
        let model = &report["models"][k];
        let validation = &scalars["loss/validation"];
        assert_eq!(validation.len(), 2, "{name}: {validation:?}");
        assert_f32(name, validation[1].1, model["val_loss"].as_f64().unwrap());
        let lr = &scalars["learning_rate"];
        assert!(
            lr.iter()
                .all(|p| p.1 as f32 == model["lr"].as_f64().unwrap() as f32)
        );
        // Each read-back once: every 20 steps and at each epoch's end, no step twice.
        let steps: Vec<u64> = scalars["loss/train"].iter().map(|p| p.0).collect();
        assert!(steps.windows(2).all(|w| w[0] < w[1]), "{name}: {steps:?}");
        assert!(
            steps.contains(&20) && steps.contains(&validation[1].0),
            "{steps:?}"
        );
    }
}

#[test]
fn a_run_killed_mid_way_keeps_every_event_it_logged() {
    let dir = tempfile::tempdir().unwrap();
    let tb = dir.path().join("tb");
    let mut child = Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args([
            "train",
            "--device",
            "cpu",
            "--dataset",
            "digits",
            "--standardize",
            "--layers",
            "64,16,10",
            "--epochs",
            "100000",
            "--log-every",
            "1",
            "--quiet",
            "--tensorboard",
        ])
        .arg(&tb)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .spawn()
        .unwrap();
    // Until a few hundred events are in the file.
    let started = Instant::now();
    let size = || {
        std::fs::read_dir(&tb)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok()?.metadata().ok())
            .map_or(0, |m| m.len())
    };
    while size() < 20_000 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no events logged in two minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL: no chance to flush or close anything.
    child.wait().unwrap();
    let logged = size();
    let runs = tensorboard_read(&tb);
    let (_, scalars) = runs.values().next().unwrap();
    let train = &scalars["loss/train"];
    // One event per step from step 1, every one read back (a record is ~50 bytes).
    assert!(
        train.len() as u64 > logged / 100,
        "{} events in {logged} bytes",
        train.len()
    );
    for (i, p) in train.iter().enumerate() {
        assert_eq!(p.0, i as u64 + 1, "steps in order, none lost");
    }
}

#[test]
fn a_file_given_as_the_folder_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("taken"), "not a folder").unwrap();
    for command in ["train", "sweep"] {
        let out = downhill(
            &[command, "--device", "cpu", "--tensorboard", "taken"],
            dir.path(),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert!(
            stderr.contains("--tensorboard taken") && stderr.contains("not a folder"),
            "{command}: {stderr}"
        );
        assert!(
            !stderr.contains("data:"),
            "refused before loading data: {stderr}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("taken")).unwrap(),
        "not a folder"
    );
}
