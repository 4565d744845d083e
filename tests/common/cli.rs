//! Running the built `downhill` binary in the test's own working folder, and the data files the
//! end-to-end tests share.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use downhill::Targets;
use downhill::data::{builtin, npy};

/// `downhill ARGS` run in the test's working folder, its output captured.
pub fn downhill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_downhill"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("the downhill binary runs")
}

/// The standard output of `downhill ARGS`, which must succeed.
pub fn ok(args: &[&str]) -> String {
    let out = downhill(args);
    assert!(
        out.status.success(),
        "downhill {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A path as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Blobs as `x.npy` (f32) and `y.npy` (int64 class indices) in `dir`.
pub fn npy_files(dir: &Path) -> (PathBuf, PathBuf) {
    let data = builtin::blobs(150, 5, 3, 4);
    let (x, y) = (dir.join("x.npy"), dir.join("y.npy"));
    npy::write(&x, &data.features).unwrap();
    let Targets::Classes(classes) = data.targets else {
        unreachable!()
    };
    // int64, 1-D, written by hand as NumPy would.
    let dict = format!(
        "{{'descr': '<i8', 'fortran_order': False, 'shape': ({},), }}",
        classes.len()
    );
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    let header = format!("{dict:<118}\n");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for c in classes {
        bytes.extend_from_slice(&i64::from(c).to_le_bytes());
    }
    std::fs::write(&y, bytes).unwrap();
    (x, y)
}

/// Writes `params` as a plain safetensors file: tensors only, no downhill metadata.
pub fn write_plain(path: &Path, params: &downhill::Parameters) {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = params
        .named_tensors()
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.shape.clone(),
                t.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<_> = bytes
        .iter()
        .map(|(n, shape, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}
