//! The memory a run needs on the host: whether its features are too large to read whole, and
//! whether its models' arrays fit, both judged before anything large is allocated.

use std::path::Path;

use crate::engine::Setup;
use crate::error::Result;
use crate::host_memory::{activation_bytes, available, check, parameter_bytes};

use super::RunRequest;

/// The size of the `.npy` file at `path` when it is larger than half the memory available now
/// (Linux's `MemAvailable`): such a file is memory-mapped and streamed rather than read whole.
/// Only a regular file can be mapped: anything else (a pipe, a FIFO, a device) is not even
/// opened here, so that looking never waits on it, consumes it or disturbs its writer.
pub(super) fn too_large_for_memory(path: &Path) -> Option<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return None;
    }
    // Without blocking, in case the path became something else since.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let size = file.metadata().ok().filter(|m| m.is_file())?.len();
    let mut magic = [0u8; 6];
    let is_npy = std::io::Read::read_exact(&mut file, &mut magic).is_ok() && &magic == b"\x93NUMPY";
    (is_npy && available().is_some_and(|a| size > a / 2)).then_some(size)
}

/// Refuses a model whose host-side arrays exceed the memory available, before any is allocated:
/// the starting parameters of every model the request describes, and, when the CPU engine may
/// train them, its parameters, gradients, optimizer state and a batch's activations. (The GPU
/// engine checks the device's memory itself.)
pub(super) fn check_host_memory(request: &RunRequest, setup: &Setup, rows: usize) -> Result<()> {
    let models = request.models.max(1);
    let copy = parameter_bytes(&setup.model).saturating_mul(models);
    let cpu = |bytes: u64| if request.cpu_engine { bytes } else { 0 };
    let slots = setup.optimizer.state_slots().len() as u64;
    let batch = request.batch_size.min(rows.max(1));
    check(&[
        ("starting parameters", copy),
        ("parameters", cpu(copy)),
        ("gradients", cpu(copy)),
        ("optimizer state", cpu(copy.saturating_mul(slots))),
        (
            "activations",
            cpu(activation_bytes(&setup.model, batch).saturating_mul(models)),
        ),
    ])
}
