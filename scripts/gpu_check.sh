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
# On a GPU machine without a Rust toolchain, build elsewhere (same CPU architecture) and point
# PREBUILT at a folder holding `downhill` and the test executables
# (`cargo test --release --no-run --all-targets` lists them); the folder's `downhill` is put
# where the tests look for it, target/release/downhill.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-check-$(date -u +%Y%m%dT%H%M%SZ)}
gemm_sizes=${GEMM_SIZES:-256,512,1024,2048,4096}
batch_sizes=${BATCH_SIZES:-64,256,1024,4096}
mkdir -p "$out"
bin=target/release/downhill
if [ -n "${PREBUILT:-}" ]; then
  mkdir -p target/release
  [ "$PREBUILT/downhill" -ef "$bin" ] || cp "$PREBUILT/downhill" "$bin"
else
  cargo build --release --quiet
fi

echo "== adapters"
"$bin" devices | tee "$out/devices.txt"
if grep -q "none of these is a hardware GPU" "$out/devices.txt"; then
  echo "note: there is no hardware GPU here; the GPU figures below are a software adapter's"
fi

echo "== the test suite on this adapter"
# Each test executable runs under a time limit (TEST_TIMEOUT seconds, default 600), so that a
# test that hangs on a driver costs its own executable's results, not the benchmarks'; the tests
# it left unfinished are named.
test_timeout=${TEST_TIMEOUT:-600}
run_one() {
  local test=$1 log
  log=$(mktemp)
  if timeout "$test_timeout" "$test" >"$log" 2>&1; then :; else
    local rc=$?
    if [ "$rc" -eq 124 ]; then
      echo "TIMED OUT after ${test_timeout} s: $(basename "$test"); unfinished:"
      "$test" --list 2>/dev/null | sed -n 's/: test$//p' | while read -r name; do
        grep -q "^test $name \.\.\. " "$log" || echo "  $name"
      done
    fi
  fi
  cat "$log"
  rm -f "$log"
}
run_tests() {
  if [ -z "${PREBUILT:-}" ]; then
    cargo test --release --all-targets --no-run --quiet 2>&1
    cargo test --release --all-targets --no-run --message-format=json 2>/dev/null |
      python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"] \
            and m["target"]["kind"][0] != "example":
        print(m["executable"])' >"$out/test-executables.txt"
  else
    ls "$PREBUILT"/* | grep -v '/downhill$' >"$out/test-executables.txt"
  fi
  while read -r test; do
    echo "running $(basename "$test")"
    run_one "$test"
  done <"$out/test-executables.txt"
}
run_tests | tee "$out/tests.txt" | grep -E "^running [^0-9]|^test result|FAILED|panicked|TIMED OUT|^  " || true
if grep -q "FAILED\|panicked\|TIMED OUT" "$out/tests.txt"; then
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
