#!/usr/bin/env bash
# Data-parallel training against one process, side by side in one run on this machine: the
# 784-512-512-10 ReLU MLP with Adam and cross-entropy on synthetic data, on the CPU engine, at
# each batch size, ROUNDS rounds alternating one process and `mpirun -np RANKS`. Prints each
# run's samples/s, the speedup, and rank 0's time per step (compute, gradient sum, update).
#
#   scripts/bench_distributed.sh [RANKS] [ROUNDS]     (BATCH_SIZES, default 256,4096)
set -euo pipefail
cd "$(dirname "$0")/.."
ranks=${1:-2}
rounds=${2:-3}
batch_sizes=${BATCH_SIZES:-256,4096}
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cargo build --release --quiet --features mpi
bin=$PWD/target/release/downhill
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
python3 - "$data" <<'PY'
import sys
import numpy as np
sys.path.insert(0, "scripts/peers")
from common import synthetic
x, y = synthetic(16384, [784, 512, 512, 10])
np.save(f"{sys.argv[1]}/x.npy", x)
np.save(f"{sys.argv[1]}/y.npy", y)
PY
echo "batch,round,processes,samples_per_second,compute_ms,sum_ms,update_ms"
for batch in ${batch_sizes//,/ }; do
  epochs=$(( batch >= 4096 ? 6 : 2 ))
  args=(train --features "$data/x.npy" --targets "$data/y.npy" --layers 784,512,512,10
        --optimizer adam --batch-size "$batch" --epochs "$epochs" --device cpu --no-autotune)
  rows=$(( 16384 / batch * batch * epochs ))
  for round in $(seq "$rounds"); do
    out=$("$bin" "${args[@]}" 2>/dev/null)
    wall=$(sed -n 's/^wall_seconds //p' <<<"$out")
    echo "$batch,$round,1,$(python3 -c "print(round($rows / $wall))"),,,"
    err=$(mpirun -np "$ranks" --oversubscribe "$bin" "${args[@]}" 2>&1 >"$data/out")
    wall=$(sed -n 's/^wall_seconds //p' "$data/out")
    times=$(sed -n 's/.*compute \([0-9.]*\) ms, gradient sum \([0-9.]*\) ms.*update \([0-9.]*\) ms/\1,\2,\3/p' <<<"$err")
    echo "$batch,$round,$ranks,$(python3 -c "print(round($rows / $wall))"),$times"
  done
done
