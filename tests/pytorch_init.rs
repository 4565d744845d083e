//! A PyTorch state dict with batch norms, saved with `safetensors.torch`, starting a run with
//! `--init`: its running statistics and `num_batches_tracked` taken as they are.

mod common;

use std::process::Command;

use common::cli::{ok, s};
use common::torch::require_torch;
use downhill::Targets;
use downhill::data::{builtin, npy};

/// A PyTorch module with batch norms, trained a few steps in PyTorch (so that its running
/// statistics and `num_batches_tracked` are its own), saved with `safetensors.torch`, starts a
/// run with `--init`: every tensor is taken as it is, and the run counts on from PyTorch's count.
#[test]
fn a_pytorch_state_dict_with_batch_norms_starts_a_run() {
    require_torch();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let blobs = builtin::blobs(64, 6, 3, 9);
    let Targets::Classes(c) = &blobs.targets else {
        unreachable!()
    };
    let classes: Vec<i64> = c.iter().map(|&c| i64::from(c)).collect();
    npy::write(&path("x.npy"), &blobs.features).unwrap();
    npy::write_int_vector(&path("y.npy"), &classes).unwrap();
    let script = r#"
import numpy as np, torch
from safetensors.torch import save_file
from torch import nn

class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(6, 16), nn.Linear(16, 3)])
        self.norms = nn.ModuleList([nn.BatchNorm1d(16)])
    def forward(self, x):
        return self.layers[1](torch.relu(self.norms[0](self.layers[0](x))))

torch.manual_seed(0)
m = M()
x = torch.from_numpy(np.load("x.npy")).float()
y = torch.from_numpy(np.load("y.npy"))
opt = torch.optim.SGD(m.parameters(), lr=0.1)
for i in range(7):
    opt.zero_grad()
    nn.functional.cross_entropy(m(x[i * 8:(i + 1) * 8]), y[i * 8:(i + 1) * 8]).backward()
    opt.step()
save_file({k: v.contiguous() for k, v in m.state_dict().items()}, "torch.safetensors")
"#;
    std::fs::write(path("make.py"), script).unwrap();
    let out = Command::new("python3")
        .arg("make.py")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let norm = downhill::Norm::Batch {
        eps: 1e-5,
        momentum: 0.1,
    };
    let (start, plain) = downhill::checkpoint::load_init(
        &path("torch.safetensors"),
        downhill::Activation::Relu,
        (norm, 0.0),
        downhill::Loss::CrossEntropy,
    )
    .unwrap();
    assert!(plain);
    assert_eq!(start.parameters.batches_tracked(), 7);
    let running_var = &start
        .parameters
        .tensor("norms.0.running_var")
        .unwrap()
        .values;
    assert!(
        running_var.iter().all(|&v| v != 1.0),
        "PyTorch's statistics"
    );
    // 64 rows in batches of 16: 4 more training passes.
    let saved = path("downhill.safetensors");
    ok(&[
        "train",
        "--features",
        s(&path("x.npy")),
        "--targets",
        s(&path("y.npy")),
        "--init",
        s(&path("torch.safetensors")),
        "--norm",
        "batch",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--save",
        s(&saved),
    ]);
    let trained = downhill::checkpoint::load_model(&saved).unwrap();
    assert_eq!(trained.parameters.batches_tracked(), 11);
}
