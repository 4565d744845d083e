"""What the peer scripts share: the synthetic data every side trains on, and downhill's side."""

import json
import subprocess

import numpy as np


def synthetic(rows, layers, seed=0):
    """`rows` standard-normal feature rows of `layers[0]` columns and class labels below
    `layers[-1]`, seeded."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, layers[0]), dtype=np.float32)
    y = rng.integers(0, layers[-1], size=rows).astype(np.int64)
    return x, y


def downhill_samples_per_second(binary, device, features, targets, layers, batch, steps):
    """Samples/s of `steps` steps of downhill's engine on `device` (`gpu` or `cpu`), timed by
    `downhill bench batch-size` after 3 warm-up steps: the same MLP, loss and Adam as the
    peers."""
    out = subprocess.run(
        [
            binary, "bench", "batch-size", "--device", device,
            "--features", features, "--targets", targets,
            "--layers", ",".join(map(str, layers)), "--loss", "cross-entropy",
            "--optimizer", "adam", "--lr", "1e-3",
            "--batch-sizes", str(batch), "--warmup-steps", "3", "--steps", str(steps),
            "--epochs", "1", "--format", "json",
        ],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)["results"][0]["samples_per_second"]
