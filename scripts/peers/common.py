"""What the peer scripts share: the synthetic data every side trains on."""

import numpy as np


def synthetic(rows, layers, seed=0):
    """`rows` standard-normal feature rows of `layers[0]` columns and class labels below
    `layers[-1]`, seeded."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, layers[0]), dtype=np.float32)
    y = rng.integers(0, layers[-1], size=rows).astype(np.int64)
    return x, y
