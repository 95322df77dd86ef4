"""Small generated series for the forecasting tests (real tables only in slow tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def seasonal_table(items: int = 2, n: int = 70, seed: int = 0) -> pd.DataFrame:
    """`items` daily series with a weekly season, a trend and noise: id, ds, y."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    frames = []
    for i in range(items):
        y = 50 + 10 * i + 0.3 * t + 8 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 1, n)
        frames.append(pd.DataFrame({"id": f"item{i}", "ds": pd.date_range("2024-01-01", periods=n,
                                                                           freq="D"), "y": y}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def table() -> pd.DataFrame:
    return seasonal_table()


@pytest.fixture(scope="session")
def make_table():
    """`seasonal_table` itself, for tests and module fixtures that build their own."""
    return seasonal_table
