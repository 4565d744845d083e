#!/usr/bin/env python3
"""downhill's GPU engine against tinygrad's WebGPU backend, side by side in one run.

Both train the same MLP (ReLU hidden layers, cross-entropy, Adam with torch's defaults,
lr 1e-3), one mini-batch step at a time with the batches already on the device; tinygrad's
step is captured once by TinyJit and replayed. Rounds alternate between the two so that a slow
spell of the machine hits both; the figure is the median over rounds of samples per second.

    python3 -m venv /tmp/tg && /tmp/tg/bin/pip install tinygrad dawn-python numpy
    cargo build --release
    /tmp/tg/bin/python scripts/peers/tinygrad_mlp_step.py --layers 784,512,512,10 --batch-sizes 64,256,1024

tinygrad's WebGPU backend runs on Dawn (the `dawn-python` package ships it; WEBGPU_PATH names
another build), which takes the default Vulkan adapter: on a machine without a GPU, the
software one downhill takes too.
"""

import argparse
import glob
import os
import platform
import time

import numpy as np

from common import add_run_arguments, report, side_by_side


def use_webgpu():
    """Points tinygrad at WebGPU, and at dawn-python's Dawn unless WEBGPU_PATH names one."""
    os.environ.setdefault("DEV", "WEBGPU")
    if "WEBGPU_PATH" not in os.environ:
        import pydawn

        lib = os.path.join(os.path.dirname(pydawn.__file__), "lib")
        found = glob.glob(os.path.join(lib, f"libwebgpu_dawn_{platform.machine()}.so"))
        if found:
            os.environ["WEBGPU_PATH"] = found[0]


def tinygrad_samples_per_second(x, y, layers, batch, steps):
    from tinygrad import Context, Tensor, TinyJit, nn
    from tinygrad.nn.optim import Adam

    model = [nn.Linear(a, b) for a, b in zip(layers[:-1], layers[1:])]

    def forward(h):
        for i, layer in enumerate(model):
            h = layer(h)
            if i + 1 < len(model):
                h = h.relu()
        return h

    optimizer = Adam(nn.state.get_parameters(model), lr=1e-3, b1=0.9, b2=0.999, eps=1e-8)

    @TinyJit
    def step(xb, yb):
        with Context(TRAINING=1):
            optimizer.zero_grad()
            loss = forward(xb).sparse_categorical_crossentropy(yb)
            loss.backward()
            optimizer.step()
            return loss.realize()

    batches = [
        (Tensor(x[i * batch:(i + 1) * batch]).realize(), Tensor(y[i * batch:(i + 1) * batch].astype(np.int32)).realize())
        for i in range(min(4, len(x) // batch))
    ]
    for i in range(3):  # capture the step and warm up
        step(*batches[i % len(batches)]).item()
    start = time.perf_counter()
    for i in range(steps):
        loss = step(*batches[i % len(batches)])
    loss.item()
    return steps * batch / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(p, "784,512,512,10", "64,256,1024", 4096, 3.0)
    a = p.parse_args()
    use_webgpu()
    layers, runs = side_by_side(a, "gpu", tinygrad_samples_per_second)
    results = [{
        "batch_size": batch,
        "downhill_gpu_samples_per_second": ours,
        "tinygrad_webgpu_samples_per_second": theirs,
        "downhill_over_tinygrad": ours / theirs,
    } for batch, ours, theirs in runs]
    from importlib.metadata import version
    report(a, {"layers": layers, "results": results},
           f"MLP {a.layers}, ReLU, cross-entropy, Adam; tinygrad {version('tinygrad')} on WebGPU (Dawn)",
           [("batch", "batch_size", ""),
            ("downhill gpu samples/s", "downhill_gpu_samples_per_second", ",.0f"),
            ("tinygrad samples/s", "tinygrad_webgpu_samples_per_second", ",.0f"),
            ("downhill/tinygrad", "downhill_over_tinygrad", ".2f")])


if __name__ == "__main__":
    main()
