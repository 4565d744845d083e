//! Saving a trained model when its own path cannot be written (a full disk, a folder removed
//! during the run): it goes to a fallback path that the error names, so that hours of training are
//! not lost to one failed write.

use std::path::{Path, PathBuf};

use crate::checkpoint::{ModelCheckpoint, save_model};
use crate::error::{Error, Result};

/// Where a model meant for `path` goes when `path` fails: the system's temporary folder, then the
/// current folder, as `downhill-rescued-PID-NAME` (with `.safetensors` added if NAME lacks it).
pub fn fallback_paths(path: &Path) -> Vec<PathBuf> {
    let name = path
        .file_name()
        .map_or_else(|| "model.safetensors".into(), |n| n.to_string_lossy());
    let extension = if name.ends_with(".safetensors") {
        ""
    } else {
        ".safetensors"
    };
    let file = format!("downhill-rescued-{}-{name}{extension}", std::process::id());
    vec![std::env::temp_dir().join(&file), PathBuf::from(file)]
}

/// Writes `checkpoint` to `path`; if that fails, to the first of [`fallback_paths`] that takes
/// it. Fails (with [`Error::NotSaved`]) whenever `path` was not written, saying where the model
/// went instead or, when no fallback took it either, every reason why.
pub fn save_model_or_rescue(path: &Path, checkpoint: &ModelCheckpoint) -> Result<()> {
    let failure = match save_model(path, checkpoint) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let mut reasons = Vec::new();
    for fallback in fallback_paths(path) {
        match save_model(&fallback, checkpoint) {
            Ok(()) => {
                return Err(Error::NotSaved {
                    failure: Box::new(failure),
                    outcome: format!(
                        "the trained model was written to {} instead; move it where it belongs",
                        fallback.display()
                    ),
                });
            }
            Err(e) => reasons.push(e.to_string()),
        }
    }
    Err(Error::NotSaved {
        failure: Box::new(failure),
        outcome: format!(
            "the fallback paths failed too ({}): the trained model is lost",
            reasons.join("; ")
        ),
    })
}
