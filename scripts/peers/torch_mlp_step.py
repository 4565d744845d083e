#!/usr/bin/env python3
"""The GPU engine against a PyTorch eager loop on the same GPU, side by side in one run.

Both train the same MLP (ReLU hidden layers, cross-entropy, Adam with torch's defaults, lr 1e-3)
on the same synthetic data, one mini-batch step at a time with the data resident on the device
(downhill gathers each batch there by index; PyTorch slices a device tensor). Rounds alternate
between the two so that a slow spell of the machine hits both; the figure is the median over
rounds of samples per second, and the ratio is downhill's over PyTorch's.

    cargo build --release
    python3 scripts/peers/torch_mlp_step.py --layers 784,1024,1024,10 --batch-sizes 64,256,1024,4096

PyTorch runs on CUDA (NVIDIA, and AMD under ROCm) or MPS (Apple) when it finds one, else on the
CPU (then the ratio compares a GPU engine with a CPU loop, and says so).
"""

import argparse
import time

from common import add_run_arguments, report, side_by_side


def torch_device():
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def synchronize(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


def torch_samples_per_second(x, y, layers, batch, steps, device):
    import torch
    from torch import nn

    torch.manual_seed(0)
    modules = []
    for i, (fan_in, fan_out) in enumerate(zip(layers[:-1], layers[1:])):
        modules.append(nn.Linear(fan_in, fan_out))
        if i + 2 < len(layers):
            modules.append(nn.ReLU())
    model = nn.Sequential(*modules).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    xs = torch.from_numpy(x).to(device)
    ys = torch.from_numpy(y).to(device)
    batches = len(x) // batch

    def step(i):
        j = i % batches
        xb, yb = xs[j * batch:(j + 1) * batch], ys[j * batch:(j + 1) * batch]
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()

    for i in range(3):
        step(i)
    synchronize(device)
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    synchronize(device)
    return steps * batch / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(p, "784,1024,1024,10", "64,256,1024,4096", 16384, 2.0)
    a = p.parse_args()
    import torch

    device = torch_device()
    layers, runs = side_by_side(
        a, "gpu", lambda x, y, layers, batch, steps: torch_samples_per_second(x, y, layers, batch, steps, device))
    results = [{
        "batch_size": batch,
        "downhill_gpu_samples_per_second": ours,
        "torch_samples_per_second": theirs,
        "downhill_over_torch": ours / theirs,
    } for batch, ours, theirs in runs]
    note = "" if device.type != "cpu" else " (no GPU for PyTorch: its CPU loop)"
    report(a, {"layers": layers, "torch": torch.__version__, "torch_device": device.type,
               "results": results},
           f"MLP {a.layers}, ReLU, cross-entropy, Adam; torch {torch.__version__} eager on {device.type}{note}",
           [("batch", "batch_size", ""),
            ("downhill gpu samples/s", "downhill_gpu_samples_per_second", ",.0f"),
            ("torch samples/s", "torch_samples_per_second", ",.0f"),
            ("downhill/torch", "downhill_over_torch", ".2f")])


if __name__ == "__main__":
    main()
