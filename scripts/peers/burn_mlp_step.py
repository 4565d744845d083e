#!/usr/bin/env python3
"""downhill against burn, side by side in one run: the GPU engine against burn's wgpu backend
on the same adapter, and the CPU engine against burn's flex backend.

Both train the same MLP (ReLU hidden layers, cross-entropy, Adam with torch's defaults,
lr 1e-3), one mini-batch step at a time with the data already on the device. Rounds alternate
between the sides so that a slow spell of the machine hits both; the figure is the median over
rounds of samples per second.

    cargo build --release
    cargo build --release --manifest-path scripts/peers/burn/Cargo.toml
    python3 scripts/peers/burn_mlp_step.py --layers 784,512,512,10 --batch-sizes 64,256,1024

Both wgpu sides take the default adapter (on a machine without a GPU, the software one).
"""

import argparse
import json
import subprocess

from common import add_run_arguments, report, side_by_side


def burn_samples_per_second(binary, backend, layers, batch, steps):
    """Samples/s of `steps` steps of the burn peer on `backend` (`wgpu` or `flex`)."""
    out = subprocess.run(
        [binary, backend, ",".join(map(str, layers)), str(batch), str(steps)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)["samples_per_second"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(p, "784,512,512,10", "64,256,1024", 4096, 3.0)
    p.add_argument("--pairs", default="gpu:wgpu,cpu:flex",
                   help="downhill device:burn backend pairs to compare")
    p.add_argument("--burn-binary", default="scripts/peers/burn/target/release/burn-mlp-step")
    a = p.parse_args()
    results = []
    for device, backend in (pair.split(":") for pair in a.pairs.split(",")):
        layers, runs = side_by_side(
            a, device,
            lambda x, y, layers, batch, steps: burn_samples_per_second(a.burn_binary, backend, layers, batch, steps))
        results.extend({
            "downhill_device": device, "burn_backend": backend, "batch_size": batch,
            "downhill_samples_per_second": ours, "burn_samples_per_second": theirs,
            "downhill_over_burn": ours / theirs,
        } for batch, ours, theirs in runs)
    report(a, {"layers": layers, "results": results},
           f"MLP {a.layers}, ReLU, cross-entropy, Adam; burn 0.22.1; medians of {a.rounds} rounds",
           [("downhill", "downhill_device", ""), ("burn", "burn_backend", ""),
            ("batch", "batch_size", ""),
            ("downhill samples/s", "downhill_samples_per_second", ",.0f"),
            ("burn samples/s", "burn_samples_per_second", ",.0f"),
            ("downhill/burn", "downhill_over_burn", ".2f")])


if __name__ == "__main__":
    main()
