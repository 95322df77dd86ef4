"""Fixtures for the executor tests: a small, real trial context."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.data.prepare import prepare
from tabpilot.data.split import make_split
from tabpilot.execution import TrialContext

sys.path.insert(0, str(Path(__file__).parent))
from raycluster import ray_cluster  # noqa: E402,F401  (fixture: one Ray cluster a session)


@pytest.fixture(scope="module")
def trial_context() -> TrialContext:
    """80 rows of a binary problem with a numeric and a categorical feature, holdout split."""
    rng = np.random.default_rng(7)
    n = 80
    x = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    y = np.where(x + (colour == "red") + 0.3 * rng.normal(size=n) > 0.4, "pos", "neg")
    df = pd.DataFrame({"x": x, "colour": colour, "y": y})
    prepared = prepare(df, "y")
    split = make_split(prepared.y, stratify=True, validation_fraction=0.25, n_folds=1, seed=0)
    return TrialContext(
        X=prepared.X, y=prepared.y, split=split, schema=prepared.schema,
        problem_type=prepared.problem_type, metric=prepared.metric, classes=prepared.classes,
        job_name="executor-test", target="y", n_threads=1, seed=0,
    )
