//! Signals through the real binary: while loading a signal ends the process at once; while
//! training the state is written (a second signal still waits for it); SIGHUP is SIGTERM; once
//! the outputs are being written a second signal ends a save that cannot finish.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::runs::{command, rest, signal, start_training, stderr};
use downhill::checkpoint::load_state;

#[test]
fn a_second_signal_still_waits_for_the_training_state() {
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let (child, lines) = start_training(dir.path(), &["--checkpoint", "s.safetensors"]);
        signal(&child, "INT");
        signal(&child, "INT");
        let err = rest(lines);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130), "{err}");
        assert!(
            err.contains("training state written to s.safetensors"),
            "{err}"
        );
        load_state(&dir.path().join("s.safetensors")).expect("the state is whole");
    }
}

#[test]
fn sighup_stops_like_sigterm_with_status_129() {
    let dir = tempfile::tempdir().unwrap();
    let (child, lines) = start_training(dir.path(), &["--checkpoint", "s.safetensors"]);
    signal(&child, "HUP");
    let err = rest(lines);
    assert_eq!(
        child.wait_with_output().unwrap().status.code(),
        Some(129),
        "{err}"
    );
    assert!(err.contains("interrupted by SIGHUP"), "{err}");
    load_state(&dir.path().join("s.safetensors")).expect("the state is whole");
}

#[test]
fn a_signal_while_loading_ends_the_process_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("features.npy");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // No process ever writes the FIFO: the run waits for its features.
    let child = command(
        dir.path(),
        &[
            "train",
            "--device",
            "cpu",
            "--features",
            "features.npy",
            "--targets",
            "t.npy",
        ],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    assert!(sent.elapsed() < Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
}

#[test]
fn a_second_signal_ends_a_save_blocked_on_a_fifo_nobody_reads() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("model.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // A reader that opens the FIFO and never reads: a model larger than the pipe's buffer blocks.
    let held = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let file = std::fs::File::open(fifo).unwrap();
            std::thread::sleep(Duration::from_secs(20));
            drop(file);
        })
    };
    let mut child = command(
        dir.path(),
        &[
            "train",
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--layers",
            "64,512,10",
            "--save",
            "model.fifo",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("epoch 1/1") {
        line.clear();
        assert!(
            lines.read_line(&mut line).unwrap() > 0,
            "ended before its epoch"
        );
    }
    // Signals until the process ends: the second one after the outputs began exits at once.
    let sent = Instant::now();
    let status = loop {
        std::thread::sleep(Duration::from_millis(300));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(sent.elapsed() < Duration::from_secs(10), "still running");
        signal(&child, "TERM");
    };
    let err = rest(lines);
    assert_eq!(status.code(), Some(143), "{err}");
    assert!(err.contains("outputs are being written"), "{err}");
    drop(held);
}
