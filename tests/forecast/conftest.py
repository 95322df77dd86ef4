"""Small generated series for the forecasting tests (real tables only in slow tests)."""

from __future__ import annotations

import sys
from pathlib import Path

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


@pytest.fixture(scope="session")
def finished_job(tmp_path_factory):
    """One small finished forecasting job (two cheap candidates and their ensemble) in a
    workspace of its own, shared by the tests of the faces that read it: (result,
    table, workspace). Tests must not change it (deploying it elsewhere is fine)."""
    import tabpilot.forecast

    workspace = tmp_path_factory.mktemp("forecast-ws")
    table = seasonal_table()
    result = tabpilot.forecast.fit(
        table, workspace, target="y", timestamp="ds", item_id="id", frequency="1D",
        horizon=7, time_limit=60, candidates=["SeasonalNaive", "AutoTheta"], name="fcjob",
        execute_notebook=False)  # executed in test_forecast_notebook's slow test
    return result, table, workspace


sys.path.insert(0, str(Path(__file__).parent.parent / "store"))
from pgcluster import postgres, postgres_url  # noqa: E402,F401  (fixtures, cluster tests)
