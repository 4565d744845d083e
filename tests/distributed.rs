//! Data-parallel training under `mpirun` (feature `mpi`; `scripts/test` installs Open MPI and
//! runs these): N ranks train what one process trains on the same global batches, reruns are
//! bit-identical, only rank 0 prints and writes, a run resumes on another number of ranks, a
//! killed rank ends the job within seconds, and what runs in one process only says so.
#![cfg(feature = "mpi")]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use safetensors::SafeTensors;

/// `mpirun` in `dir`, allowed to run as root, oversubscribing the cores.
fn launcher(dir: &Path) -> Command {
    let mut command = Command::new("mpirun");
    command
        .arg("--oversubscribe")
        .current_dir(dir)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("XDG_RUNTIME_DIR", std::env::temp_dir());
    command
}

/// `mpirun -np RANKS downhill ARGS` in `dir`.
fn mpirun(ranks: usize, args: &[&str], dir: &Path) -> Command {
    let mut command = launcher(dir);
    command
        .args(["-np", &ranks.to_string()])
        .arg(env!("CARGO_BIN_EXE_downhill"))
        .args(args);
    command
}

/// `train` on the built-in digits with a small MLP, the start of every run here.
const DIGITS: [&str; 5] = ["train", "--dataset", "digits", "--layers", "64,24,10"];

fn succeeds(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `downhill ARGS` in one process.
fn single(args: &[&str], dir: &Path) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args(args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap();
    succeeds(out, &format!("downhill {args:?}"))
}

/// Every tensor of a checkpoint, by name.
fn tensors(path: &Path) -> HashMap<String, Vec<f32>> {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, values)
        })
        .collect()
}

/// The largest difference between two checkpoints' tensors, relative to 1 + the value.
fn worst(a: &Path, b: &Path) -> f32 {
    let (a, b) = (tensors(a), tensors(b));
    assert_eq!(a.len(), b.len());
    a.iter()
        .flat_map(|(name, x)| {
            x.iter()
                .zip(&b[name])
                .map(|(p, q)| (p - q).abs() / (1.0 + p.abs()))
        })
        .fold(0.0, f32::max)
}

/// A two-rank training run of many epochs started in `dir` (with `extra` flags), once both of
/// its ranks (mpirun's children named downhill) have trained for a few seconds; with their
/// process ids.
fn long_run(dir: &Path, extra: &[&str]) -> (std::process::Child, Vec<String>) {
    let args = [
        &DIGITS[..],
        &["--epochs", "100000", "--device", "cpu"],
        extra,
    ]
    .concat();
    let job = mpirun(2, &args, dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ranks = training_ranks(job.id());
    (job, ranks)
}

/// The process ids of the two ranks of the mpirun `job`, once both have trained a few seconds.
fn training_ranks(job: u32) -> Vec<String> {
    loop {
        let children = Command::new("pgrep")
            .args(["-P", &job.to_string(), "-x", "downhill"])
            .output()
            .unwrap();
        let pids: Vec<String> = String::from_utf8_lossy(&children.stdout)
            .split_whitespace()
            .map(String::from)
            .collect();
        if pids.len() == 2 {
            std::thread::sleep(Duration::from_secs(3));
            return pids;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Each optimizer on both engines, on 2 and 3 ranks: the digits' last batch of an epoch has 5
/// rows, so 3 ranks take 2, 2 and 1; clipping and accumulation on some; ranks with no rows;
/// validation with early stopping; data streamed from the host with dropout on one; gradients
/// summed in one bucket or, on every other case, two, on a thread of their own while backward
/// goes on (one CPU case and one GPU case) or as backward hands them over.
/// The ranks' model equals
/// the one process's within the GPU-against-CPU tolerance (the sums differ only in order).
#[test]
fn ranks_train_what_one_process_trains() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, usize, &[&str]); 9] = [
        (
            "cpu",
            2,
            &[
                "--optimizer",
                "sgd",
                "--momentum",
                "0.9",
                "--clip-norm",
                "0.5",
            ],
        ),
        ("gpu", 3, &["--optimizer", "adam", "--accumulate", "2"]),
        ("cpu", 3, &["--optimizer", "adamw", "--weight-decay", "0.1"]),
        (
            "gpu",
            2,
            &["--optimizer", "rmsprop", "--centered", "--clip-norm", "1"],
        ),
        ("gpu", 3, &["--optimizer", "adagrad"]),
        ("cpu", 2, &["--optimizer", "adadelta", "--accumulate", "3"]),
        // Batches of 2 rows on 3 ranks: rank 2 has none of any batch (and ranks 1 and 2 none of
        // the last, 1-row batch), contributing zero gradients.
        ("cpu", 3, &["--optimizer", "adam", "--batch-size", "2"]),
        // Validation each epoch and early stopping, decided alike on every rank.
        (
            "gpu",
            2,
            &[
                "--optimizer",
                "sgd",
                "--val-split",
                "0.2",
                "--early-stopping",
                "1",
            ],
        ),
        // Streamed from the host, each rank reading only its rows, with dropout's masks.
        (
            "gpu",
            3,
            &[
                "--optimizer",
                "adam",
                "--residency",
                "streamed",
                "--dropout",
                "0.3",
            ],
        ),
    ];
    for (i, (device, ranks, extra)) in cases.iter().enumerate() {
        let (one, many) = (
            format!("one{i}.safetensors"),
            format!("many{i}.safetensors"),
        );
        let args = |save: &str| {
            let mut a = DIGITS.to_vec();
            a.extend([
                "--epochs",
                "1",
                "--device",
                device,
                "--no-autotune",
                "--save",
            ]);
            a.push(save);
            a.extend_from_slice(extra);
            a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        };
        let one_args = args(&one);
        let one_args: Vec<&str> = one_args.iter().map(String::as_str).collect();
        single(&one_args, dir.path());
        let mut many_args = args(&many);
        if i % 2 == 0 {
            // Buckets of 512 bytes: the last layer's gradients are summed while the first's
            // are computed.
            many_args.extend(["--bucket-mib".into(), "0.0005".into()]);
        }
        if i == 0 || i == 4 {
            // The CPU engine and the software adapter sum on the main thread unless asked:
            // here on a thread of its own, while backward goes on.
            many_args.extend(["--overlap".into(), "on".into()]);
        }
        let many_args: Vec<&str> = many_args.iter().map(String::as_str).collect();
        succeeds(
            mpirun(*ranks, &many_args, dir.path()).output().unwrap(),
            &format!("{ranks} ranks, {device}, {extra:?}"),
        );
        let worst = worst(&dir.path().join(&one), &dir.path().join(&many));
        assert!(worst < 1e-5, "{ranks} ranks, {device}, {extra:?}: {worst}");
    }
}

/// Two runs on 3 ranks, their gradients summed in two buckets while backward runs, write the
/// same bytes; only rank 0 prints and writes; the replicas are compared at every step and found
/// the same.
#[test]
fn reruns_are_bit_identical_and_rank_0_alone_prints_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str| {
        let save = format!("{name}.safetensors");
        let metrics = format!("{name}.jsonl");
        let flags = [
            "--epochs",
            "2",
            "--device",
            "gpu",
            "--no-autotune",
            "--dropout",
            "0.2",
            "--check-replicas",
            "1",
            "--bucket-mib",
            "0.0005",
            "--overlap",
            "on",
            "--save",
            &save,
            "--metrics",
            &metrics,
        ];
        let args = [&DIGITS[..], &flags].concat();
        let out = succeeds(mpirun(3, &args, dir.path()).output().unwrap(), "3 ranks");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(stdout.matches("train_loss").count(), 1, "{stdout}");
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(stderr.matches("saved ").count(), 1, "{stderr}");
        assert!(dir.path().join(&metrics).exists());
        std::fs::read(dir.path().join(&save)).unwrap()
    };
    assert_eq!(run("first"), run("second"), "the same bytes");
}

/// A run checkpointed on 2 ranks and resumed on 3 ends where one process's run ends.
#[test]
fn a_run_resumes_on_another_number_of_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--epochs", "2", "--device", "cpu", "--optimizer", "adam"];
    let common = [&DIGITS[..], &flags].concat();
    let with = |extra: &[&'static str]| -> Vec<&'static str> { [&common[..], extra].concat() };
    single(&with(&["--save", "whole.safetensors"]), dir.path());
    let first = with(&[
        "--max-steps",
        "30",
        "--checkpoint-every",
        "30",
        "--checkpoint",
        "state.safetensors",
    ]);
    succeeds(mpirun(2, &first, dir.path()).output().unwrap(), "2 ranks");
    let resumed = [
        "train",
        "--resume",
        "state.safetensors",
        "--max-steps",
        "114",
        "--save",
        "resumed.safetensors",
    ];
    succeeds(mpirun(3, &resumed, dir.path()).output().unwrap(), "3 ranks");
    let worst = worst(
        &dir.path().join("whole.safetensors"),
        &dir.path().join("resumed.safetensors"),
    );
    assert!(worst < 1e-5, "{worst}");
}

/// A rank killed mid-run ends the whole job within seconds, and mpirun names it.
#[test]
fn a_killed_rank_ends_the_job_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let (job, ranks) = long_run(dir.path(), &[]);
    let rank = &ranks[1];
    Command::new("kill").args(["-9", rank]).status().unwrap();
    let killed = Instant::now();
    let out = job.wait_with_output().unwrap();
    assert!(
        killed.elapsed() < Duration::from_secs(20),
        "{:?}",
        killed.elapsed()
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rank 1") && stderr.contains("Killed"),
        "{stderr}"
    );
}

/// Commands that run in one process say so under mpirun, a sweep of fewer models than ranks
/// is refused, and so is a batch norm (whose statistics would be each rank's slice's).
#[test]
fn what_runs_in_one_process_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // What `ranks` ranks running `args` print as they fail.
    let refused = |ranks: usize, args: &[&str]| {
        let out = mpirun(ranks, args, dir.path()).output().unwrap();
        assert!(!out.status.success(), "{args:?} ran");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let stderr = refused(2, &["check", "--dataset", "digits", "--steps", "1"]);
    assert!(
        stderr.contains("`downhill check` runs in a single process") && stderr.contains("rank"),
        "{stderr}"
    );
    let stderr = refused(3, &["sweep", "--dataset", "digits", "--lr", "0.1,0.01"]);
    assert!(
        stderr.contains("a sweep of 2 models over 3 ranks") && stderr.contains("at most 2"),
        "{stderr}"
    );
    let stderr = refused(2, &[&DIGITS[..], &["--norm", "batch"]].concat());
    assert!(stderr.contains("--norm batch under mpirun"), "{stderr}");
}

/// Ctrl-C at mpirun (which passes a signal on to every rank) stops every rank at the same
/// step: rank 0 writes the training state once, and the run resumes from it on other ranks.
#[test]
fn an_interrupt_stops_every_rank_at_one_step_and_the_state_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (job, _) = long_run(dir.path(), &["--checkpoint", "state.safetensors"]);
    Command::new("kill")
        .args(["-INT", &job.id().to_string()])
        .status()
        .unwrap();
    let interrupted = Instant::now();
    let out = job.wait_with_output().unwrap();
    assert!(interrupted.elapsed() < Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("training state written to").count(),
        1,
        "{stderr}"
    );
    let state = dir.path().join("state.safetensors");
    assert!(state.exists(), "{stderr}");
    // It resumes, here on 3 ranks, for a few more steps.
    let steps = downhill::checkpoint::load_state(&state)
        .unwrap()
        .state
        .steps;
    let more = (steps + 5).to_string();
    let resumed = [
        "train",
        "--resume",
        "state.safetensors",
        "--epochs",
        "100000",
        "--max-steps",
        &more,
        "--save",
        "resumed.safetensors",
    ];
    let out = succeeds(mpirun(3, &resumed, dir.path()).output().unwrap(), "resumed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("steps {}..{more}", steps + 1)),
        "{stderr}"
    );
    assert!(dir.path().join("resumed.safetensors").exists());
}

/// `--check-replicas` stops a run whose replicas part ways (planted here: the two ranks are
/// launched with different optimizers), naming each rank's checksum.
#[test]
fn replicas_that_differ_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let rank = |optimizer: &'static str| {
        let flags = [
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--check-replicas",
            "5",
            "--optimizer",
            optimizer,
        ];
        [&[env!("CARGO_BIN_EXE_downhill")][..], &DIGITS, &flags].concat()
    };
    let out = launcher(dir.path())
        .args(["-np", "1"])
        .args(rank("adam"))
        .args([":", "-np", "1"])
        .args(rank("sgd"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("failed:\nerror: the ranks' replicas differ after step 5"),
        "{stderr}"
    );
}

/// A sweep under mpirun splits its models across the ranks (5 models on 2 and 3 ranks: shares
/// of 3 and 2, and 2, 2 and 1) and reports what one process reports: on the CPU, where each
/// model trains alone, the same losses and best model bit for bit; on the GPU, where the pack
/// of models differs, within the GPU-against-CPU tolerance. Rank 0 alone writes the outputs,
/// with every model's epochs in the metrics log.
#[test]
fn a_sweep_splits_its_models_across_the_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let losses = |out: &Output| -> (Vec<f64>, serde_json::Value) {
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let losses = report["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["train_loss"].as_f64().unwrap())
            .collect();
        (losses, report["best"].clone())
    };
    for device in ["cpu", "gpu"] {
        let args = |save: &str, metrics: &str| {
            [
                "sweep",
                "--dataset",
                "digits",
                "--layers",
                "64,24,10",
                "--epochs",
                "2",
                "--lr",
                "0.001,0.003,0.01,0.03,0.05",
                "--device",
                device,
                "--no-autotune",
                "--format",
                "json",
                "--save",
                save,
                "--metrics",
                metrics,
            ]
            .map(String::from)
        };
        let one = args("one.safetensors", "one.jsonl");
        let one: Vec<&str> = one.iter().map(String::as_str).collect();
        let (expected, best) = losses(&single(&one, dir.path()));
        assert_eq!(expected.len(), 5);
        for ranks in [2, 3] {
            let save = format!("{device}{ranks}.safetensors");
            let metrics = format!("{device}{ranks}.jsonl");
            let many = args(&save, &metrics);
            let many: Vec<&str> = many.iter().map(String::as_str).collect();
            let out = succeeds(
                mpirun(ranks, &many, dir.path()).output().unwrap(),
                &format!("a sweep on {ranks} ranks, {device}"),
            );
            let (got, got_best) = losses(&out);
            assert_eq!(got_best, best, "{ranks} ranks, {device}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(stderr.matches("saved ").count(), 1, "{stderr}");
            let lines = std::fs::read_to_string(dir.path().join(&metrics)).unwrap();
            assert_eq!(lines.lines().count(), 10, "5 models, 2 epochs each");
            if device == "cpu" {
                assert_eq!(got, expected, "{ranks} ranks");
                assert_eq!(
                    std::fs::read(dir.path().join("one.safetensors")).unwrap(),
                    std::fs::read(dir.path().join(&save)).unwrap(),
                    "the best model, sent to rank 0, {ranks} ranks"
                );
            } else {
                for (g, e) in got.iter().zip(&expected) {
                    assert!((g - e).abs() <= 1e-4 * e.abs().max(1.0), "{g} vs {e}");
                }
                assert!(worst(&dir.path().join("one.safetensors"), &dir.path().join(&save)) < 1e-4);
            }
        }
    }
}
