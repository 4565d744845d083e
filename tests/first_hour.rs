//! What a new user meets in a first hour with the command line, through the binary: the
//! summaries say what the saved model is, and every flag's help says what it does.

use std::process::{Command, Output};

fn downhill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("the downhill binary runs")
}

fn value<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {key} in {stdout}"))
}

#[test]
fn early_stopping_reports_the_kept_epoch_whose_model_is_saved() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("m.jsonl");
    let out = downhill(&[
        "train",
        "--device",
        "cpu",
        "--early-stopping",
        "2",
        "--epochs",
        "200",
        "--metrics",
        metrics.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let best: usize = value(&stdout, "best_epoch").parse().unwrap();
    let epochs: Vec<serde_json::Value> = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(best < epochs.len(), "stopped early after epoch {best}");
    let kept = &epochs[best - 1];
    let lowest = epochs
        .iter()
        .map(|e| e["val_loss"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert_eq!(kept["val_loss"].as_f64().unwrap(), lowest);
    let printed: f64 = value(&stdout, "val_loss").parse().unwrap();
    assert!((printed - lowest).abs() < 1e-5, "{stdout}");
    // The summary ends with the model's size and the run's wall time.
    assert_eq!(value(&stdout, "parameters"), "4810");
    assert!(value(&stdout, "wall_seconds").parse::<f64>().unwrap() > 0.0);
}

#[test]
fn every_flag_of_every_command_has_a_description() {
    for command in [
        &["train"][..],
        &["eval"],
        &["predict"],
        &["check"],
        &["sweep"],
        &["bench", "gemm"],
        &["bench", "batch-size"],
        &["bench", "sweep"],
        &["lr-find"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let help = String::from_utf8(downhill(&args).stdout).unwrap();
        let lines: Vec<&str> = help.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let flag = line.trim_start();
            if !line.starts_with("  ") || !flag.starts_with("--") || flag.starts_with("--help") {
                continue;
            }
            let described = lines
                .get(i + 1)
                .is_some_and(|next| next.starts_with("          ") && !next.trim().is_empty());
            assert!(
                described,
                "`downhill {}`: {flag} has no description",
                command.join(" ")
            );
        }
    }
}

/// A CSV of 150 rows: 4 features and an integer `target` column (3 classes, well apart), as
/// scikit-learn's iris and wine are shipped.
fn labelled_csv(dir: &std::path::Path) -> std::path::PathBuf {
    let mut text = String::from("a,b,c,d,target\n");
    for i in 0..150 {
        let class = i % 3;
        let x = |k: usize| class as f32 * 3.0 + ((i * 7 + k * 13) % 10) as f32 / 10.0;
        text += &format!("{},{},{},{},{class}\n", x(0), x(1), x(2), x(3));
    }
    let path = dir.join("labelled.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn an_integer_target_column_is_classification_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let csv = labelled_csv(dir.path());
    let data = ["--data", csv.to_str().unwrap(), "--target-column", "target"];
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--device",
            "cpu",
            "--epochs",
            "30",
            "--val-split",
            "0.2",
            "--standardize",
        ];
        args.extend_from_slice(&data);
        args.extend_from_slice(extra);
        downhill(&args)
    };
    for extra in [
        &[][..],
        &["--layers", "4,16,3"],
        &["--loss", "cross-entropy"],
    ] {
        let out = train(extra);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{extra:?}: {stderr}");
        assert!(
            stderr.contains("classification into 3 classes with cross-entropy"),
            "{extra:?}: {stderr}"
        );
        let accuracy: f64 = value(&stdout, "val_accuracy")
            .trim_end_matches('%')
            .parse()
            .unwrap();
        assert!(accuracy > 90.0, "{extra:?}: {stdout}");
    }
    // Told otherwise: one output fitted by mse, no accuracy.
    let out = train(&["--task", "regression"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !stdout.contains("val_accuracy") && stdout.contains("val_loss"),
        "{stdout}"
    );
    // Fractional targets cannot be classes.
    let values = dir.path().join("values.csv");
    std::fs::write(&values, "a,target\n1,0.5\n2,1.5\n3,2.5\n4,3.5\n5,4.5\n").unwrap();
    let out = downhill(&[
        "train",
        "--device",
        "cpu",
        "--data",
        values.to_str().unwrap(),
        "--task",
        "classification",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("non-negative integers"));
}

/// `y = 1000·x₀ − 500·x₁ + 20000` on 200 rows of two features: targets far from unit scale.
fn large_targets(dir: &std::path::Path) -> std::path::PathBuf {
    let mut text = String::from("x0,x1,y\n");
    for i in 0..200 {
        let (a, b) = ((i % 17) as f32 / 17.0, (i % 11) as f32 / 11.0);
        text += &format!("{a},{b},{}\n", 1000.0 * a - 500.0 * b + 20000.0);
    }
    let path = dir.join("large.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn standardized_targets_are_saved_with_the_model_and_undone_by_predict_and_eval() {
    let dir = tempfile::tempdir().unwrap();
    let csv = large_targets(dir.path());
    let model = dir.path().join("m.safetensors");
    let out = downhill(&[
        "train",
        "--device",
        "cpu",
        "--data",
        csv.to_str().unwrap(),
        "--standardize",
        "--standardize-targets",
        "--layers",
        "2,1",
        "--optimizer",
        "sgd",
        "--lr",
        "0.1",
        "--epochs",
        "100",
        "--save",
        model.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = downhill::checkpoint::load_model(&model).unwrap();
    let stats = saved.target_standardizer.expect("target statistics saved");
    assert!((stats.mean[0] - 20_240.0).abs() < 50.0, "{:?}", stats.mean);
    // Predictions come back in the targets' units: a linear fit is close to exact.
    let predictions = dir.path().join("p.csv");
    let out = downhill(&[
        "predict",
        "--device",
        "cpu",
        "--model",
        model.to_str().unwrap(),
        "--data",
        csv.to_str().unwrap(),
        "--target-column",
        "y",
        "--output",
        predictions.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&predictions).unwrap();
    let first: f64 = text.lines().nth(1).unwrap().parse().unwrap();
    assert!((first - 20_000.0).abs() < 5.0, "{text}");
    // eval: the loss on the training scale, the scores in the targets' units.
    let out = downhill(&[
        "eval",
        "--device",
        "cpu",
        "--model",
        model.to_str().unwrap(),
        "--data",
        csv.to_str().unwrap(),
        "--target-column",
        "y",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        value(&stdout, "r2").parse::<f64>().unwrap() > 0.999,
        "{stdout}"
    );
    assert!(
        value(&stdout, "rmse").parse::<f64>().unwrap() < 5.0,
        "{stdout}"
    );
    assert!(
        value(&stdout, "loss").parse::<f64>().unwrap() < 1e-3,
        "{stdout}"
    );
    // Classes cannot be standardised.
    let out = downhill(&["train", "--device", "cpu", "--standardize-targets"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is for regression targets"));
}

#[test]
fn a_training_state_alone_resumes_its_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_downhill"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let flags = [
        "train",
        "--device",
        "cpu",
        "--dataset",
        "blobs",
        "--epochs",
        "6",
        "--batch-size",
        "16",
        "--seed",
        "4",
        "--lr",
        "0.01",
        "--save",
        "tc.safetensors",
        "--quiet",
    ];
    let (code, _, err) = run(&flags);
    assert_eq!(code, Some(0), "{err}");
    let whole = std::fs::read(dir.path().join("tc.safetensors")).unwrap();
    // The same run stopped after 40 steps, as Ctrl-C would, then resumed from the file alone,
    // from another folder.
    let (code, _, err) = run(&[
        &flags[..],
        &["--max-steps", "40", "--checkpoint-every", "40"],
    ]
    .concat());
    assert_eq!(code, Some(0), "{err}");
    std::fs::remove_file(dir.path().join("tc.safetensors")).unwrap();
    let state = dir.path().join("tc.state.safetensors");
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args([
            "train",
            "--resume",
            state.to_str().unwrap(),
            "--epochs",
            "6",
        ])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("warning"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("tc.safetensors")).unwrap(),
        whole
    );
    // A flag that changes the result is taken, and said to.
    let (code, _, err) = run(&["train", "--resume", "tc.state.safetensors", "--lr", "0.02"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("warning: --lr 0.02 replaces `0.01`"), "{err}");
}

#[test]
fn no_driver_noise_where_the_runtime_folder_is_unset() {
    let out = Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args(["train", "--epochs", "1"])
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{stderr}");
}
