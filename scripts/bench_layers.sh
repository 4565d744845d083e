#!/usr/bin/env bash
# What norms and dropout cost a training step, side by side in one run: `bench batch-size` on
# the same MLP with no norm, --dropout, --norm layer and --norm batch, alternating the four for
# ROUNDS rounds on each engine, then the median samples/s of each and the ratio to the plain
# MLP, with the norm and dropout kernels' share of a GPU step.
#
# Usage: scripts/bench_layers.sh [ROUNDS] [LAYERS] [BATCHES]   (default 3, 64,256,256,10, 256,1024)
set -euo pipefail
rounds=${1:-3}
layers=${2:-64,256,256,10}
batches=${3:-256,1024}
cd "$(dirname "$0")/.."
cargo build --release --quiet
out=$(mktemp -d)
configs=("plain:" "dropout:--dropout 0.1" "layer:--norm layer" "batch:--norm batch")
for round in $(seq "$rounds"); do
  for config in "${configs[@]}"; do
    name=${config%%:*}
    flags=${config#*:}
    # shellcheck disable=SC2086
    target/release/downhill bench batch-size --device gpu,cpu --dataset digits --layers "$layers" \
      $flags --batch-sizes "$batches" --epochs 1 --format json > "$out/$name-$round.json" 2>/dev/null
  done
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
names = ["plain", "dropout", "layer", "batch"]
rows = {}
for name in names:
    for r in range(1, rounds + 1):
        for row in json.load(open(f"{out}/{name}-{r}.json"))["results"]:
            key = (name, row["engine"], row["batch_size"])
            rows.setdefault(key, []).append(row)
print("| engine | batch | layers | samples/s (median) | over plain | norm+dropout share of GPU time |")
print("| --- | ---: | --- | ---: | ---: | ---: |")
for engine in ["gpu", "cpu"]:
    for batch in sorted({k[2] for k in rows}):
        plain = statistics.median(r["samples_per_second"] for r in rows[("plain", engine, batch)])
        for name in names:
            rs = rows[(name, engine, batch)]
            sps = statistics.median(r["samples_per_second"] for r in rs)
            shares = [r["norm_dropout_share"] for r in rs if r.get("norm_dropout_share") is not None]
            share = f"{100 * statistics.median(shares):.1f}%" if shares else "-"
            print(f"| {engine} | {batch} | {name} | {sps:,.0f} | {sps / plain:.2f} | {share} |")
PY
