//! Running the built binary as a user would, for the reliability tests: in a folder of the
//! test's, with the CPU engine, signals sent to a run once it trains.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Output, Stdio};

/// `downhill ARGS` in `dir`, with `TMPDIR` there too (where a model that cannot be saved is
/// rescued to), not yet started.
pub fn command(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_downhill"));
    c.args(args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env("TMPDIR", dir);
    c
}

/// `downhill ARGS` run in `dir`, its output captured.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    command(dir, args)
        .output()
        .expect("the downhill binary runs")
}

/// A finished run's standard error, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A short CPU run on the built-in digits (one epoch unless `extra` says), with `extra` flags.
pub fn train(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--device", "cpu"];
    if !extra.contains(&"--epochs") {
        args.extend(["--epochs", "1"]);
    }
    args.extend_from_slice(extra);
    run(dir, &args)
}

/// Starts a long CPU run and returns once it has started training (the `data:` line that says
/// where batches come from), with its stderr to read the rest.
pub fn start_training(dir: &Path, extra: &[&str]) -> (Child, BufReader<ChildStderr>) {
    let mut args = vec!["train", "--device", "cpu", "--epochs", "100000"];
    args.extend_from_slice(extra);
    let mut child = command(dir, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the downhill binary runs");
    let mut lines = BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut line = String::new();
    while !line.contains("batches, steps") {
        line.clear();
        assert!(
            lines.read_line(&mut line).expect("stderr reads") > 0,
            "the run ended before training"
        );
    }
    (child, lines)
}

/// Sends signal `name` (`INT`, `TERM`, `HUP`) to `child`.
pub fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
}

/// What is left to read of a run's standard error, to its end.
pub fn rest(mut lines: BufReader<ChildStderr>) -> String {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut lines, &mut text).expect("stderr reads");
    text
}
