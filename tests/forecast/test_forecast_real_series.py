"""End-to-end jobs on real public series (read from /work/shared/datasets, never copied):
the best candidate beats SeasonalNaive on the job's own backtest."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tabpilot.forecast.job import fit
from tabpilot.forecast.model import load
from tabpilot.forecast.request import ForecastRequest

DATASETS = Path("/work/shared/datasets")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (DATASETS / "manifest.json").is_file(),
                                 reason="the shared datasets are not on this machine")]


def entry(name: str) -> dict:
    return next(d for d in json.loads((DATASETS / "manifest.json").read_text())
                if d["name"] == name)


@pytest.mark.parametrize("name,frequency,horizon,extra", [
    ("airline_passengers", "1M", 12, {}),
    ("m4_daily_sample", "1D", 14, {"filling": {"backfill": "none"}}),
    ("walmart_sales_weekly", "1W", 8, {}),
])
def test_the_best_beats_seasonal_naive(tmp_path, name, frequency, horizon, extra):
    meta = entry(name)
    table = pd.read_csv(DATASETS / meta["file"])
    request = ForecastRequest.build(target=meta["target"], timestamp=meta["timestamp"],
                                    item_id=meta["series_id"], frequency=frequency,
                                    horizon=horizon, time_limit=90, **extra)
    result = fit(table, request, tmp_path)
    scores = result.leaderboard.set_index("candidate")["AverageWeightedQuantileLoss"]
    assert scores[result.best] < scores["SeasonalNaive"]
    predictor, _ = load(result.model_dir)
    frame = predictor.predict(table)
    items = table[meta["series_id"]].nunique() if meta["series_id"] else 1
    assert len(frame) == items * horizon and frame["mean"].notna().all()
