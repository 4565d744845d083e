#!/usr/bin/env bash
# Data-parallel training against one process, side by side in one run on this machine: the
# 784-512-512-10 ReLU MLP with Adam and cross-entropy on synthetic data, on the CPU engine, at
# each batch size, ROUNDS rounds alternating one process on every core, one process on one
# rank's share of the cores, and `mpirun -np RANKS` (each rank on its share of the cores) with
# the gradient sums overlapping backward (`--overlap on`) and not (`--overlap off`). Prints each
# run, then per batch size the medians: samples/s, rank 0's time per step (compute, gradient
# sum, how much of the sum was hidden behind backward, update), the speedup over one process on
# every core and the scaling efficiency, samples/s over RANKS × one process on one rank's share
# of the cores.
#
#   scripts/bench_distributed.sh [RANKS] [ROUNDS]     (BATCH_SIZES, default 256,4096;
#                                                     BUCKET_MIB, default 25)
set -euo pipefail
cd "$(dirname "$0")/.."
ranks=${1:-2}
rounds=${2:-3}
batch_sizes=${BATCH_SIZES:-256,4096}
bucket_mib=${BUCKET_MIB:-25}
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cargo build --release --quiet --features mpi
bin=$PWD/target/release/downhill
cores=$(nproc)
share=$(( cores / ranks > 0 ? cores / ranks : 1 ))
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
runs=$data/runs.csv
echo "batch,round,processes,cores_each,overlap,samples_per_second,compute_ms,sum_ms,hidden_ms,waited_ms,update_ms" | tee "$runs"
samples() { python3 -c "print(round($1 / $(sed -n 's/^wall_seconds //p' "$2")))"; }
for batch in ${batch_sizes//,/ }; do
  epochs=$(( batch >= 4096 ? 6 : 2 ))
  args=(train --features "$data/x.npy" --targets "$data/y.npy" --layers 784,512,512,10
        --optimizer adam --batch-size "$batch" --epochs "$epochs" --device cpu --no-autotune)
  rows=$(( 16384 / batch * batch * epochs ))
  for round in $(seq "$rounds"); do
    "$bin" "${args[@]}" >"$data/out" 2>/dev/null
    echo "$batch,$round,1,$cores,,$(samples "$rows" "$data/out"),,,,," | tee -a "$runs"
    taskset -c "0-$(( share - 1 ))" "$bin" "${args[@]}" >"$data/out" 2>/dev/null
    echo "$batch,$round,1,$share,,$(samples "$rows" "$data/out"),,,,," | tee -a "$runs"
    for overlap in yes no; do
      flags=(--bucket-mib "$bucket_mib" --overlap "$([[ $overlap == yes ]] && echo on || echo off)")
      err=$(mpirun -np "$ranks" --oversubscribe "$bin" "${args[@]}" "${flags[@]}" 2>&1 >"$data/out")
      times=$(sed -n 's/.*compute \([0-9.]*\) ms, gradient sum \([0-9.]*\) ms (\([0-9.]*\) ms hidden.*, \([0-9.]*\) ms waited.*update \([0-9.]*\) ms/\1,\2,\3,\4,\5/p' <<<"$err")
      echo "$batch,$round,$ranks,$share,$overlap,$(samples "$rows" "$data/out"),$times" | tee -a "$runs"
    done
  done
done
python3 - "$runs" "$ranks" "$cores" "$share" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
ranks, cores, share = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
med = lambda rs, k: statistics.median(float(r[k]) for r in rs)
print(f"\nmedians; efficiency = {ranks} ranks' samples/s / ({ranks} x one process on {share} core(s))")
print("| batch | 1 process, all cores | 1 process, 1 rank's cores | "
      f"{ranks} ranks | overlap | speedup | efficiency | compute ms | sum ms | hidden ms | update ms |")
print("| ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for batch in dict.fromkeys(r["batch"] for r in rows):
    b = [r for r in rows if r["batch"] == batch]
    whole = med([r for r in b if r["processes"] == "1" and int(r["cores_each"]) == cores], "samples_per_second")
    part = med([r for r in b if r["processes"] == "1" and int(r["cores_each"]) == share], "samples_per_second")
    for overlap in ["yes", "no"]:
        par = [r for r in b if r["processes"] == str(ranks) and r["overlap"] == overlap]
        n = med(par, "samples_per_second")
        print(f"| {batch} | {whole:,.0f} | {part:,.0f} | {n:,.0f} | {overlap} | {n / whole:.2f} | "
              f"{n / (ranks * part):.2f} | {med(par, 'compute_ms'):.2f} | {med(par, 'sum_ms'):.2f} | "
              f"{med(par, 'hidden_ms'):.2f} | {med(par, 'update_ms'):.2f} |")
PY
