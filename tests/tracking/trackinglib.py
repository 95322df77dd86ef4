"""Helpers of the tracking tests: a small table, the tiny job's settings."""

from __future__ import annotations

import numpy as np
import pandas as pd

# a job of a few candidates and nothing after them: what tracking needs, in ~5 s
TINY_JOB = dict(time_limit=15, algorithms=["lightgbm", "linear"], max_candidates=3,
                stacking="off", distill=False, ensemble=False, verbosity=0, seed=0)


def binary_table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b, noise = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    y = np.where(a - 0.7 * b + 0.5 * (colour == "red") + 0.4 * rng.normal(size=n) > 0,
                 "yes", "no")
    return pd.DataFrame({"a": a, "b": b, "noise": noise, "colour": colour, "y": y})
