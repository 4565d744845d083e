"""What the peer scripts share: the synthetic data every side trains on, downhill's side, and
the loop that times both sides in alternating rounds."""

import json
import os
import sys
import statistics
import subprocess
import tempfile

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


def add_run_arguments(parser, layers, batch_sizes, rows, seconds):
    """The flags every comparison takes, with its defaults: the model, the batch sizes, the
    rows of synthetic data, the rounds, the time per measurement and downhill's binary."""
    parser.add_argument("--layers", default=layers)
    parser.add_argument("--batch-sizes", default=batch_sizes)
    parser.add_argument("--rows", type=int, default=rows)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=seconds, help="about this long per measurement")
    parser.add_argument("--binary", default="target/release/downhill")
    parser.add_argument("--format", choices=["table", "json"], default="table")


def side_by_side(args, device, theirs):
    """Each batch size of `args` (from `add_run_arguments`): downhill's engine on `device` and
    the peer `theirs(x, y, layers, batch, steps)` (samples/s), alternating over `args.rounds`
    rounds on the same synthetic data, the same number of steps each (as many as downhill runs
    in about `args.seconds`). Returns `(layers, [(batch, downhill median, peer median)])` in
    samples/s."""
    layers = [int(v) for v in args.layers.split(",")]
    batches = [int(v) for v in args.batch_sizes.split(",")]
    if max(batches) > args.rows:
        raise SystemExit(f"every batch size must be at most --rows ({args.rows})")
    x, y = synthetic(args.rows, layers)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        features, targets = os.path.join(tmp, "x.npy"), os.path.join(tmp, "y.npy")
        np.save(features, x)
        np.save(targets, y)
        ours_now = lambda batch, steps: downhill_samples_per_second(
            args.binary, device, features, targets, layers, batch, steps)
        for batch in batches:
            steps = max(5, int(ours_now(batch, 5) / batch * args.seconds))
            ours, others = [], []
            for _ in range(args.rounds):
                ours.append(ours_now(batch, steps))
                others.append(theirs(x, y, layers, batch, steps))
            results.append((batch, statistics.median(ours), statistics.median(others)))
    return layers, results


def report(args, document, title, columns):
    """Prints a peer script's `document` ({"layers", ..., "results": [row, ...]}): as JSON with
    `--format json`, else `title` and a table of the results, one column per
    `(heading, key, format)` in `columns`, each a character wider than its heading."""
    if args.format == "json":
        json.dump(document, sys.stdout, indent=2)
        print()
        return
    print(title)
    print(" ".join(f"{heading:>{len(heading) + 1}}" for heading, _, _ in columns))
    for row in document["results"]:
        print(" ".join(f"{row[key]:>{len(heading) + 1}{spec}}" for heading, key, spec in columns))
