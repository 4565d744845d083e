#!/usr/bin/env python3
"""The CPU reference engine against JAX + optax on the CPU, side by side in one run.

Both train the same MLP (ReLU hidden layers, softmax cross-entropy, Adam with torch's
defaults, lr 1e-3) on the same synthetic data, one mini-batch step at a time with the data in
host memory. Each step gathers its batch's rows by index from a shuffled order, as downhill's
training and its `bench batch-size` do; JAX gathers them inside its jitted step. Rounds
alternate between the two so that a slow spell of the machine hits both; the figure is the
median over rounds of steps per second.

    python3 -m venv /tmp/jax && /tmp/jax/bin/pip install jax optax
    cargo build --release
    /tmp/jax/bin/python scripts/peers/cpu_mlp_step.py --layers 784,512,512,10 --batch-sizes 64,256,1024

JAX runs with its defaults (XLA uses every core); downhill's CPU engine runs as it ships.
"""

import argparse
import time

import numpy as np

from common import add_run_arguments, report, side_by_side


def jax_steps_per_second(x, y, layers, batch, steps):
    import jax
    import jax.numpy as jnp
    import optax

    key = jax.random.PRNGKey(0)
    params = []
    for fan_in, fan_out in zip(layers[:-1], layers[1:]):
        key, wk, bk = jax.random.split(key, 3)
        bound = 1.0 / np.sqrt(fan_in)
        params.append(
            (
                jax.random.uniform(wk, (fan_out, fan_in), jnp.float32, -bound, bound),
                jax.random.uniform(bk, (fan_out,), jnp.float32, -bound, bound),
            )
        )

    def loss_fn(params, xb, yb):
        h = xb
        for i, (w, b) in enumerate(params):
            h = h @ w.T + b
            if i + 1 < len(params):
                h = jax.nn.relu(h)
        return optax.softmax_cross_entropy_with_integer_labels(h, yb).mean()

    optimizer = optax.adam(1e-3, b1=0.9, b2=0.999, eps=1e-8)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, x_all, y_all, rows):
        loss, grads = jax.value_and_grad(loss_fn)(params, x_all[rows], y_all[rows])
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    # The rows of each step: full batches of one shuffled order of the data, as downhill takes
    # them (its order differs; the work does not).
    x_all, y_all = jnp.asarray(x), jnp.asarray(y)
    batches = len(x) // batch
    order = np.random.default_rng(0).permutation(len(x)).astype(np.int32)
    rows = [jnp.asarray(order[i * batch:(i + 1) * batch]) for i in range(batches)]
    for i in range(3):  # compile and warm up
        params, opt_state, loss = step(params, opt_state, x_all, y_all, rows[i % batches])
    loss.block_until_ready()
    start = time.perf_counter()
    for i in range(steps):
        params, opt_state, loss = step(params, opt_state, x_all, y_all, rows[i % batches])
    loss.block_until_ready()
    return steps / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(p, "784,512,512,10", "64,256,1024", 4096, 2.0)
    a = p.parse_args()
    layers, runs = side_by_side(
        a, "cpu", lambda x, y, layers, batch, steps: jax_steps_per_second(x, y, layers, batch, steps) * batch)
    results = [{
        "batch_size": batch,
        "downhill_cpu_steps_per_second": ours / batch,
        "jax_cpu_steps_per_second": theirs / batch,
        "jax_time_over_downhill_time": ours / theirs,
    } for batch, ours, theirs in runs]
    import jax
    report(a, {"layers": layers, "results": results},
           f"MLP {a.layers}, ReLU, cross-entropy, Adam; jax {jax.__version__} on {jax.devices()[0].platform}",
           [("batch", "batch_size", ""),
            ("downhill cpu steps/s", "downhill_cpu_steps_per_second", ".1f"),
            ("jax steps/s", "jax_cpu_steps_per_second", ".1f"),
            ("downhill/jax", "jax_time_over_downhill_time", ".2f")])


if __name__ == "__main__":
    main()
