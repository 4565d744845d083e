//! `downhill sweep` end to end: the table, JSON, plot, metrics and the best model saved as a
//! normal checkpoint; a diverging learning rate reported and frozen; the same on the CPU; and
//! `check` over a packed run.

use std::process::{Command, Output};

use downhill::checkpoint::load_model;

fn downhill(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args(args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("the downhill binary runs")
}

fn ok(args: &[&str], dir: &std::path::Path) -> (String, String) {
    let out = downhill(args, dir);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "downhill {args:?} failed:\n{stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

/// SGD on the digits at four learning rates, 1e3 among them (it diverges), two restarts each.
const SWEEP: &[&str] = &[
    "sweep",
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
    "1e-3,1e-2,1e-1,1e3",
    "--momentum",
    "0.9",
    "--restarts",
    "2",
    "--epochs",
    "3",
    "--log-every",
    "10",
];

#[test]
fn sweep_reports_every_model_freezes_the_diverged_and_saves_the_best() {
    let dir = tempfile::tempdir().unwrap();
    for device in ["gpu", "cpu"] {
        let save = format!("best-{device}.safetensors");
        let args = [
            SWEEP,
            &[
                "--device",
                device,
                "--format",
                "json",
                "--plot",
                "losses.svg",
                "--metrics",
                "m.jsonl",
                "--save",
                &save,
            ],
        ]
        .concat();
        let (stdout, stderr) = ok(&args, dir.path());
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let models = report["models"].as_array().unwrap();
        assert_eq!(models.len(), 8, "{device}: 4 rates × 2 restarts");
        for (k, m) in models.iter().enumerate() {
            assert_eq!(m["seed"], k as u64 % 2, "{device}: restarts vary fastest");
            assert_eq!(m["momentum"], 0.9);
            let diverged = !m["diverged"].is_null();
            assert_eq!(diverged, m["lr"] == 1e3, "{device} model {k}: {m}");
            if diverged {
                assert!(m["val_loss"].is_null());
                assert!(
                    stderr.contains(&format!(
                        "model {k} (lr=1000 momentum=0.9 seed={}) diverged at step",
                        k % 2
                    )),
                    "{stderr}"
                );
            } else {
                assert_eq!(m["epochs"].as_array().unwrap().len(), 3);
                assert!(m["val_loss"].as_f64().unwrap().is_finite());
                assert!(m["curve"].as_array().unwrap().len() >= 3);
            }
        }
        // The best is the lowest validation loss of those that did not diverge.
        let best = report["best"].as_u64().unwrap() as usize;
        let lowest = models
            .iter()
            .filter_map(|m| m["val_loss"].as_f64())
            .fold(f64::INFINITY, f64::min);
        assert_eq!(models[best]["val_loss"].as_f64(), Some(lowest));
        assert!(
            models[best]["val_accuracy"].as_f64().unwrap() > 0.9,
            "{device}"
        );
        assert_eq!(report["saved"], save.as_str());
        // A normal checkpoint, which eval reads back at the reported accuracy's level.
        let checkpoint = load_model(&dir.path().join(&save)).unwrap();
        assert_eq!(checkpoint.model.outputs(), 10);
        let (eval, _) = ok(
            &[
                "eval",
                "--model",
                &save,
                "--dataset",
                "digits",
                "--device",
                device,
            ],
            dir.path(),
        );
        assert!(eval.contains("accuracy"), "{eval}");
        let svg = std::fs::read_to_string(dir.path().join("losses.svg")).unwrap();
        assert!(svg.contains("lr 0.1") && svg.contains("diverged (2 of 8)"));
        let metrics = std::fs::read_to_string(dir.path().join("m.jsonl")).unwrap();
        // 3 epochs of the 6 models that did not diverge (the others stop at their first read-back).
        assert_eq!(metrics.lines().count(), 18, "{metrics}");
    }
}

#[test]
fn sweep_table_marks_the_best_and_the_diverged() {
    let dir = tempfile::tempdir().unwrap();
    let (table, _) = ok(&[SWEEP, &["--quiet"]].concat(), dir.path());
    assert!(
        table.starts_with("  #          lr  momentum   seed"),
        "{table}"
    );
    assert_eq!(table.lines().count(), 9, "{table}");
    assert_eq!(table.matches(" best").count(), 1, "{table}");
    assert_eq!(table.matches("diverged at step").count(), 2, "{table}");
    // Without --save the best goes to a default path in the working directory.
    assert!(dir.path().join("sweep-best.safetensors").exists());
}

#[test]
fn a_sweep_where_every_model_diverges_fails_and_saves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = downhill(
        &[
            "sweep",
            "--dataset",
            "linear",
            "--optimizer",
            "sgd",
            "--lr",
            "1e4,1e5",
            "--epochs",
            "1",
            "--quiet",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("every one of the 2 models diverged; try smaller learning rates"),
        "{stderr}"
    );
    assert!(!dir.path().join("sweep-best.safetensors").exists());
}

#[test]
fn single_run_commands_refuse_lists_and_sweeps_refuse_single_run_flags() {
    let dir = tempfile::tempdir().unwrap();
    let refused = [
        (
            &["train", "--lr", "0.1,0.2"][..],
            "train trains one model, so --lr takes one value; to train one model per value side by side, use `downhill sweep --lr 0.1,0.2`",
        ),
        (
            &["sweep", "--optimizer", "adam", "--momentum", "0.9,0.5"][..],
            "Adam has no momentum; momentum applies to SGD and RMSprop",
        ),
        (
            &["sweep", "--restarts", "2", "--init", "x.safetensors"][..],
            "a starting checkpoint gives every model the same ones: drop --init or --restarts",
        ),
    ];
    // Flags of single runs are not sweep's, nor sweep's train's: the command line refuses them.
    for args in [
        &["train", "--restarts", "3"][..],
        &["sweep", "--early-stopping", "2"],
    ] {
        let out = downhill(args, dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("unexpected argument"), "{args:?}: {stderr}");
    }
    for (args, expected) in refused {
        let out = downhill(args, dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn check_compares_every_packed_model_with_it_alone_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, _) = ok(
        &[
            "check",
            "--dataset",
            "blobs",
            "--layers",
            "8,12,4",
            "--optimizer",
            "rmsprop",
            "--lr",
            "1e-3,1e-2",
            "--momentum",
            "0,0.9",
            "--restarts",
            "2",
            "--clip-norm",
            "1",
            "--steps",
            "3",
            "--format",
            "json",
        ],
        dir.path(),
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["passed"], true);
    let models = report["models"].as_array().unwrap();
    assert_eq!(models.len(), 8);
    assert_eq!(models[3]["label"], "lr=0.001 momentum=0.9 seed=1");
    for m in models {
        assert_eq!(m["steps"].as_array().unwrap().len(), 3);
        assert_eq!(m["passed"], true);
    }
    // A planted difference in model 0 fails model 0 only.
    let out = downhill(
        &[
            "check",
            "--dataset",
            "blobs",
            "--layers",
            "8,12,4",
            "--lr",
            "1e-3,1e-2",
            "--steps",
            "2",
            "--format",
            "json",
            "--perturb",
            "layers.0.weight:1:0.01",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["models"][0]["passed"], false);
    assert_eq!(report["models"][1]["passed"], true);
}
