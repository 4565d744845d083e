#!/usr/bin/env bash
# The check to run on a machine with a hardware GPU (NVIDIA, AMD, Intel or Apple), in one run:
#   1. the adapters wgpu finds, and the one the engine and the tests take;
#   2. the test suite's GPU tests on that adapter (every test takes the best adapter, which is
#      the hardware one where there is one; the golden checkpoints then check two runs for
#      identical bytes instead of the lavapipe table);
#   3. `bench gemm` on square products from 256 to 4096, GPU and CPU;
#   4. `bench batch-size` on the 784-1024-1024-10 ReLU MLP with Adam at batch 64 to 4096 (every
#      column: step times, GPU time by kernel, device memory);
#   5. beside it, a PyTorch eager loop doing the same work on the same GPU, with the ratio
#      (scripts/peers/torch_mlp_step.py; skipped, and said so, when PyTorch is not installed).
#
# Usage: scripts/gpu_check.sh [OUT_DIR]   (default: gpu-check-<date>; the figures as text)
# GEMM_SIZES and BATCH_SIZES override the sizes (to try the script quickly on a slow adapter).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-check-$(date -u +%Y%m%dT%H%M%SZ)}
gemm_sizes=${GEMM_SIZES:-256,512,1024,2048,4096}
batch_sizes=${BATCH_SIZES:-64,256,1024,4096}
mkdir -p "$out"
cargo build --release --quiet
bin=target/release/downhill

echo "== adapters"
"$bin" devices | tee "$out/devices.txt"
if grep -q "none of these is a hardware GPU" "$out/devices.txt"; then
  echo "note: there is no hardware GPU here; the GPU figures below are a software adapter's"
fi

echo "== the test suite on this adapter"
cargo test --release --all-targets --quiet 2>&1 | tee "$out/tests.txt" | grep -E "^test result|FAILED|panicked" || true
if grep -q "FAILED\|panicked" "$out/tests.txt"; then
  echo "GPU tests FAILED: see $out/tests.txt"
  status=1
else
  status=0
fi

echo "== bench gemm"
"$bin" bench gemm --sizes "$gemm_sizes" --device gpu,cpu | tee "$out/gemm.txt"

echo "== bench batch-size, 784-1024-1024-10 MLP, and PyTorch on the same work"
if python3 -c "import torch, numpy" 2>/dev/null; then
  python3 scripts/peers/torch_mlp_step.py --layers 784,1024,1024,10 \
    --batch-sizes "$batch_sizes" --binary "$bin" | tee "$out/torch.txt"
else
  echo "PyTorch is not installed here (python3 -m pip install torch numpy): downhill alone"
fi
python3 - "$bin" "$out" "$batch_sizes" <<'PY'
import os, subprocess, sys, tempfile
import numpy as np
binary, out, batches = sys.argv[1], sys.argv[2], sys.argv[3]
rng = np.random.default_rng(0)
with tempfile.TemporaryDirectory() as tmp:
    x, y = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
    np.save(x, rng.standard_normal((16384, 784), dtype=np.float32))
    np.save(y, rng.integers(0, 10, size=16384).astype(np.int64))
    args = [binary, "bench", "batch-size", "--device", "gpu", "--features", x, "--targets", y,
            "--layers", "784,1024,1024,10", "--optimizer", "adam", "--lr", "1e-3",
            "--batch-sizes", batches, "--epochs", "1"]
    table = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    print(table)
    open(os.path.join(out, "batch-size.txt"), "w").write(table)
PY
echo "figures in $out/"
exit "$status"
