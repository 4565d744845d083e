//! What a user can do to a run that must never cost a trained model, damage a file that is not
//! downhill's, or end the process by an abort: each case through the real binary, on the CPU
//! engine (the same code paths decide every case on the GPU). Signals are in tests/signals.rs.

mod common;

use std::os::unix::fs::FileTypeExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::runs::{command, rest, run, signal, start_training, stderr, train};
use downhill::checkpoint::load_model;

#[test]
fn a_symbolic_link_is_followed_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("real.safetensors");
    std::fs::write(&target, b"old").unwrap();
    std::os::unix::fs::symlink("real.safetensors", dir.path().join("link.safetensors")).unwrap();
    let out = train(dir.path(), &["--save", "link.safetensors", "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let link = std::fs::symlink_metadata(dir.path().join("link.safetensors")).unwrap();
    assert!(link.file_type().is_symlink(), "the link was replaced");
    load_model(&target).expect("the link's target holds the model");
    // A dangling link creates the file it points to.
    std::os::unix::fs::symlink("made.safetensors", dir.path().join("dangling")).unwrap();
    let out = train(dir.path(), &["--save", "dangling", "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    load_model(&dir.path().join("made.safetensors")).unwrap();
}

#[test]
fn devices_are_written_into_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let out = train(dir.path(), &["--save", "/dev/null", "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    // A link to standard output: each epoch's metrics arrive there once, and the link is left
    // alone.
    let out = train(
        dir.path(),
        &["--metrics", "/proc/self/fd/1", "--epochs", "3", "--quiet"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let epochs: Vec<u64> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, [1, 2, 3], "{stdout}");
    // A FIFO that a process reads: the model goes through it whole.
    let fifo = dir.path().join("model.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let out = train(dir.path(), &["--save", "model.fifo", "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let received = dir.path().join("received.safetensors");
    std::fs::write(&received, reader.join().unwrap()).unwrap();
    load_model(&received).expect("the model came through the FIFO whole");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn a_model_that_cannot_be_saved_is_rescued_to_a_named_path() {
    let dir = tempfile::tempdir().unwrap();
    let out = train(dir.path(), &["--save", "/dev/full", "--quiet"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    let rescued = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("downhill-rescued-"))
        .expect("a rescued model");
    assert!(err.contains(&*rescued.to_string_lossy()), "{err}");
    load_model(&rescued).expect("the rescued model loads");
}

#[test]
fn a_failed_metrics_log_does_not_cost_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = train(
        dir.path(),
        &["--metrics", "/dev/full", "--save", "m.safetensors"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("warning: could not write /dev/full"), "{err}");
    load_model(&dir.path().join("m.safetensors")).expect("the model was saved");
}

#[test]
fn output_paths_are_checked_before_training() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("folder")).unwrap();
    for (flag, path, says) in [
        ("--save", "missing/m.safetensors", "does not exist"),
        ("--save", "folder", "is a folder"),
        ("--checkpoint", "/proc/s.safetensors", "cannot create files"),
        ("--metrics", "folder", "is a folder"),
        ("--plot", "missing/p.svg", "does not exist"),
    ] {
        let started = Instant::now();
        let out = run(
            dir.path(),
            &["train", "--device", "cpu", "--epochs", "100000", flag, path],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{flag} {path}: {err}");
        assert!(
            err.contains(flag) && err.contains(says),
            "{flag} {path}: {err}"
        );
        assert!(
            !err.contains("device:"),
            "{flag} {path} was checked late: {err}"
        );
        assert!(started.elapsed() < Duration::from_secs(30));
    }
    let out = run(
        dir.path(),
        &[
            "predict",
            "--model",
            "m",
            "--features",
            "x",
            "--output",
            "missing/p.npy",
        ],
    );
    assert!(stderr(&out).contains("--output missing/p.npy: the folder missing does not exist"));
}

#[test]
fn temporary_files_of_a_killed_write_are_removed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join(".m.safetensors.Ab12Cd.tmp");
    let unrelated = dir.path().join(".other.safetensors.Ab12Cd.tmp");
    std::fs::write(&stale, b"torn").unwrap();
    std::fs::write(&unrelated, b"not ours to remove").unwrap();
    let out = train(dir.path(), &["--save", "m.safetensors", "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stale.exists());
    assert!(unrelated.exists());
}

#[test]
fn a_closed_pipe_stops_the_output_not_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(
        dir.path(),
        &[
            "train",
            "--device",
            "cpu",
            "--epochs",
            "2",
            "--save",
            "m.safetensors",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // What `| head -0` does: the reading end closed before anything is printed.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    load_model(&dir.path().join("m.safetensors")).expect("trained and saved");
    let mut child = command(dir.path(), &["devices"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn models_too_large_for_memory_are_refused_not_aborted() {
    let dir = tempfile::tempdir().unwrap();
    for layers in [
        "64,1000000000,10",
        "64,100000,100000,10",
        "64,4294967296,10",
    ] {
        for device in ["cpu", "gpu"] {
            let out = run(
                dir.path(),
                &[
                    "train", "--device", device, "--layers", layers, "--epochs", "1",
                ],
            );
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{layers} on {device}: {err}");
            assert!(
                err.contains("of memory (") && err.contains("parameters"),
                "{err}"
            );
        }
    }
}

#[test]
fn a_loss_grown_by_orders_of_magnitude_is_divergence() {
    let dir = tempfile::tempdir().unwrap();
    let out = train(
        dir.path(),
        &["--optimizer", "sgd", "--lr", "3", "--save", "m.safetensors"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("training diverged") && err.contains("lower the learning rate"),
        "{err}"
    );
    // The loss grew without becoming infinite: the threshold, not the NaN check, stopped it.
    assert!(
        err.contains("over 1000× its value before training"),
        "{err}"
    );
    assert!(
        !dir.path().join("m.safetensors").exists(),
        "a diverged model was saved"
    );
}

#[test]
fn runs_that_would_train_nothing_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for flags in [["--epochs", "0"], ["--max-steps", "0"]] {
        let out = run(
            dir.path(),
            &["train", "--device", "cpu", flags[0], flags[1]],
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("trains nothing"));
    }
    let out = train(
        dir.path(),
        &[
            "--epochs",
            "3",
            "--save",
            "m.safetensors",
            "--checkpoint-every",
            "45",
            "--quiet",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = train(
        dir.path(),
        &["--epochs", "2", "--resume", "m.state.safetensors"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("nothing is left to train; give more --epochs"));
    let out = train(
        dir.path(),
        &[
            "--epochs",
            "4",
            "--seed",
            "9",
            "--resume",
            "m.state.safetensors",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("--seed 0, and this one has --seed 9"));
}

#[test]
fn huge_hyperparameters_are_refused_in_a_few_words() {
    let dir = tempfile::tempdir().unwrap();
    let out = train(dir.path(), &["--lr", "1e300"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("lr = 1e300") && err.contains("too large"),
        "{err}"
    );
    assert!(err.len() < 400, "{err}");
}

#[test]
fn a_training_state_that_cannot_be_written_costs_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    // Periodic checkpoints into a full disk: a warning, training goes on, the model and the plot
    // are written, and the run ends with an error naming the checkpoint.
    let out = train(
        dir.path(),
        &[
            "--epochs",
            "3",
            "--checkpoint",
            "/dev/full",
            "--checkpoint-every",
            "50",
            "--save",
            "m.safetensors",
            "--plot",
            "p.svg",
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("training goes on"), "{err}");
    assert!(
        err.contains("the last training-state checkpoint could not be written"),
        "{err}"
    );
    load_model(&dir.path().join("m.safetensors")).expect("the model was saved");
    assert!(dir.path().join("p.svg").exists());
    // Interrupted with nowhere to write the state: the signal's status, and the model kept.
    let (child, lines) = start_training(
        dir.path(),
        &["--checkpoint", "/dev/full", "--save", "i.safetensors"],
    );
    signal(&child, "TERM");
    let err = rest(lines);
    assert_eq!(
        child.wait_with_output().unwrap().status.code(),
        Some(143),
        "{err}"
    );
    assert!(
        err.contains("the training state could not be written"),
        "{err}"
    );
    load_model(&dir.path().join("i.safetensors")).expect("the model as it stood was saved");
}

#[test]
fn an_output_never_overwrites_an_input_or_another_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.npy"), b"data the user gave").unwrap();
    for (args, says) in [
        (
            &[
                "train",
                "--features",
                "x.npy",
                "--targets",
                "y.npy",
                "--plot",
                "x.npy",
            ][..],
            "--plot and --features name the same file",
        ),
        (
            &[
                "train",
                "--save",
                "m.safetensors",
                "--checkpoint",
                "m.safetensors",
            ],
            "--checkpoint and --save name the same file",
        ),
        (
            &[
                "predict",
                "--model",
                "m",
                "--features",
                "x.npy",
                "--output",
                "x.npy",
            ],
            "--output and --features name the same file",
        ),
    ] {
        let out = run(dir.path(), args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(
        std::fs::read(dir.path().join("x.npy")).unwrap(),
        b"data the user gave"
    );
    // A state resumed from is the state that goes on: rewriting it in place is the point.
    let out = train(
        dir.path(),
        &[
            "--epochs",
            "2",
            "--checkpoint",
            "s.safetensors",
            "--checkpoint-every",
            "45",
            "--metrics",
            "m.jsonl",
            "--quiet",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(
        dir.path(),
        &[
            "train",
            "--resume",
            "s.safetensors",
            "--epochs",
            "3",
            "--quiet",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // And the metrics log of the resumed run goes on from the lines already written.
    let log = std::fs::read_to_string(dir.path().join("m.jsonl")).unwrap();
    let epochs: Vec<u64> = log
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(epochs, [1, 2, 3], "{log}");
}
