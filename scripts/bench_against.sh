#!/usr/bin/env bash
# Compares `downhill bench` figures of the working tree against an earlier revision, side by side
# in one run on this machine: both binaries are built in release mode, then each benchmark runs
# ROUNDS times, alternating the two binaries so that load on the machine falls on both alike.
# Every figure is printed as CSV with the binary it came from; compare the medians.
#
#   scripts/bench_against.sh REVISION [ROUNDS]
#
# The earlier revision is checked out in a temporary worktree and built in its own target
# folder ($BENCH_BASE_TARGET, default target/bench-base).
set -euo pipefail
cd "$(dirname "$0")/.."

revision=${1:?usage: scripts/bench_against.sh REVISION [ROUNDS]}
rounds=${2:-3}
base_target=${BENCH_BASE_TARGET:-$PWD/target/bench-base}
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

worktree=$(mktemp -d)
trap 'git worktree remove --force "$worktree" >/dev/null 2>&1 || true' EXIT
git worktree add --detach -q "$worktree" "$revision"
(cd "$worktree" && CARGO_TARGET_DIR="$base_target" cargo build --release --quiet --bin downhill)
cargo build --release --quiet --bin downhill
base="$base_target/release/downhill"
head="$PWD/target/release/downhill"

# The benchmarks: the matrix product on both engines; training at three batch sizes with the
# fixed tiles (so that both binaries run the same kernels); a sweep of packed models.
benchmarks=(
    "bench gemm --sizes 256,512,1024 --seconds 1 --device gpu,cpu --no-autotune --format csv"
    "bench batch-size --dataset digits --standardize --layers 64,512,512,10 --batch-sizes 64,256,1024 --steps 30 --warmup-steps 5 --epochs 1 --device gpu,cpu --no-autotune --format csv"
    "bench sweep --dataset digits --standardize --layers 64,32,10 --epochs 2 --batch-size 32 --models 4,16 --repeats 2 --device gpu --no-autotune --format csv"
)

for bench in "${benchmarks[@]}"; do
    echo "# downhill $bench"
    for round in $(seq 1 "$rounds"); do
        for side in base head; do
            binary=$base
            [ "$side" = head ] && binary=$head
            # shellcheck disable=SC2086
            "$binary" $bench 2>/dev/null | sed "s/^/$side,$round,/"
        done
    done
done
