//! What the tests that run PyTorch need.

use std::process::Command;

/// Fails, saying how to get them, unless python3 imports torch, numpy and safetensors.
pub fn require_torch() {
    let out = Command::new("python3")
        .args(["-c", "import torch, numpy, safetensors"])
        .output();
    let why = match out {
        Ok(o) if o.status.success() => return,
        Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
        Err(e) => format!("python3 does not run: {e}"),
    };
    panic!(
        "this test runs the README's PyTorch example and needs python3 with torch, numpy and \
         safetensors: {why}\nInstall them with: python3 -m pip install numpy safetensors torch \
         --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple"
    );
}
