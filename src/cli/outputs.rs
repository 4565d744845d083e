//! Output paths: each checked before any work, and each failure collected so that one output
//! that cannot be written never costs another.

use std::path::Path;

use downhill::fsio::check_output;
use downhill::{Error, Result};

use crate::cli::output::errln;

/// Checks every output path before any work (see [`downhill::fsio::check_output`]).
pub fn check_outputs(outputs: &[(&str, Option<&Path>)]) -> Result<()> {
    outputs
        .iter()
        .filter_map(|(flag, path)| path.map(|p| (flag, p)))
        .try_for_each(|(flag, path)| check_output(path, flag))
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
