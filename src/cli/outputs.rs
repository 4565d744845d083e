//! Output paths: each checked before any work, and each failure collected so that one output
//! that cannot be written never costs another.

use std::path::Path;

use downhill::fsio::check_output;

use super::args::RunArgs;
use downhill::{Error, Result};

use crate::cli::output::errln;

/// Checks every output path before any work (see [`downhill::fsio::check_output`]).
pub fn check_outputs(outputs: &[(&str, Option<&Path>)]) -> Result<()> {
    outputs
        .iter()
        .filter_map(|(flag, path)| path.map(|p| (flag, p)))
        .try_for_each(|(flag, path)| check_output(path, flag))
}

/// Refuses two outputs that name the same file, and an output that names one of the `inputs`:
/// writing one would destroy the other. Devices and FIFOs (`/dev/null`, a pipe) may be shared.
pub fn check_distinct(
    outputs: &[(&str, Option<&Path>)],
    inputs: &[(&str, Option<&Path>)],
) -> Result<()> {
    let files = |named: &[(&str, Option<&Path>)]| -> Vec<(String, std::path::PathBuf)> {
        named
            .iter()
            .filter_map(|(flag, path)| path.map(|p| (flag.to_string(), p)))
            .filter(|(_, path)| !downhill::fsio::is_stream(path))
            .map(|(flag, path)| (flag, identity(path)))
            .collect()
    };
    let (outputs, inputs) = (files(outputs), files(inputs));
    for (i, (flag, path)) in outputs.iter().enumerate() {
        let clash = outputs[..i]
            .iter()
            .map(|(other, p)| (other, p, "output"))
            .chain(inputs.iter().map(|(other, p)| (other, p, "input")))
            .find(|(_, p, _)| *p == path);
        if let Some((other, _, kind)) = clash {
            return Err(Error::Usage(format!(
                "{flag} and {other} name the same file, {}: writing {flag} would destroy that \
                 {kind}; give {flag} a path of its own",
                path.display()
            )));
        }
    }
    Ok(())
}

/// The file `path` names, as comparable as the file system allows: its canonical path when it
/// exists (links resolved), else its absolute path.
fn identity(path: &Path) -> std::path::PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// `outcome` when every output was written; else each failure printed, and an error that counts
/// them.
pub fn finish<T>(failures: Vec<Error>, outcome: T) -> Result<T> {
    match failures.len() {
        0 => Ok(outcome),
        1 => Err(failures.into_iter().next().expect("one failure")),
        n => {
            for failure in &failures {
                errln!("error: {failure}");
            }
            Err(Error::Usage(format!(
                "{n} outputs could not be written (above); the others were"
            )))
        }
    }
}

/// The files a training run reads (data, validation data, starting parameters), named by their
/// flags, for [`check_distinct`].
pub fn run_inputs(run: &RunArgs) -> Vec<(&'static str, Option<&Path>)> {
    vec![
        ("--features", run.data.features.as_deref()),
        ("--targets", run.data.targets.as_deref()),
        ("--data", run.data.data.as_deref()),
        ("--val-features", run.validation.val_features.as_deref()),
        ("--val-targets", run.validation.val_targets.as_deref()),
        ("--val-data", run.validation.val_data.as_deref()),
        ("--init", run.init.init.as_deref()),
    ]
}
