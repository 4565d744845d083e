//! A runtime folder for the graphics drivers. Mesa's EGL (wgpu's GL backend) prints
//! `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` on every adapter listing
//! when that variable is unset, as it is under `sudo`, cron, ssh without a session, or in a
//! container: alarming, and harmless. Where it is unset, it is pointed at a private folder of
//! this user's (`$TMPDIR/downhill-runtime-UID`, mode 0700), before any thread starts.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;

/// Sets `XDG_RUNTIME_DIR` to a private folder when it is unset. Does nothing where the folder
/// cannot be made or is not this user's alone.
///
/// # Safety
///
/// It changes the process's environment, so no other thread may exist yet (call it first thing
/// in `main`).
pub unsafe fn ensure() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some() {
        return;
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir: PathBuf = std::env::temp_dir().join(format!("downhill-runtime-{uid}"));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    let private = std::fs::symlink_metadata(&dir)
        .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o777 == 0o700);
    if private {
        // SAFETY: the caller guarantees that no other thread exists, so nothing reads the
        // environment concurrently.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", &dir) };
    }
}
