//! Running the built `downhill` binary from a test, in a folder of the test's.

use std::path::Path;
use std::process::{Command, Output};

/// `downhill ARGS` run in `dir`, its output captured.
pub fn downhill(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args(args)
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("the downhill binary runs")
}

/// The standard output of `downhill ARGS` run in `dir`, which must succeed.
pub fn ok(args: &[&str], dir: &Path) -> String {
    let out = downhill(args, dir);
    assert!(
        out.status.success(),
        "downhill {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}
