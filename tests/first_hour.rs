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
