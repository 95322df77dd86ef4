"""The statistical candidates per item: spread over processes when there are many items
(the same forecasts as in one process), and Naive for an item a model refuses, said in
the job's notes, never the whole candidate lost to one short series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabpilot.forecast import candidates
from tabpilot.forecast.candidates import LocalModel, Setting


def histories(items: int, n: int = 40, seed: int = 0) -> dict[str, pd.Series]:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2020-01-01", periods=n, freq="MS")
    t = np.arange(n)
    return {f"s{i}": pd.Series(100 + i + 0.5 * t + 5 * np.sin(2 * np.pi * t / 12)
                               + rng.normal(0, 1, n), index=index) for i in range(items)}


SETTING = Setting(horizon=6, quantiles=(0.1, 0.5, 0.9), season=12, freq="MS")


@pytest.mark.parametrize("call", ["forecast", "fit"])
def test_many_items_spread_over_processes_give_what_one_process_gives(monkeypatch, call):
    series = histories(10)
    monkeypatch.setattr(candidates, "workers", lambda: 1)
    alone = LocalModel("AutoTheta", SETTING)
    expected = alone.forecast(series) if call == "forecast" else alone.fit(series).predict(series)
    monkeypatch.setattr(candidates, "workers", lambda: 2)
    monkeypatch.setattr(candidates, "PARALLEL_ITEMS", 4)
    spread = LocalModel("AutoTheta", SETTING)
    got = spread.forecast(series) if call == "forecast" else spread.fit(series).predict(series)
    assert list(got) == list(series)  # the items' order is kept
    for item in series:
        np.testing.assert_allclose(got[item], expected[item], rtol=1e-9)
    if call == "fit":
        assert set(spread.fitted_) == set(series)


def test_out_of_time_in_a_worker_process_stops_the_candidate(monkeypatch):
    monkeypatch.setattr(candidates, "workers", lambda: 2)
    monkeypatch.setattr(candidates, "PARALLEL_ITEMS", 4)
    with pytest.raises(candidates.OutOfTime):
        LocalModel("AutoETS", SETTING).forecast(histories(8), deadline=0.0)


def test_an_item_the_model_refuses_is_forecast_by_naive_and_said():
    series = histories(3)
    series["tiny"] = series["s0"].iloc[:3]  # AutoETS: "tiny datasets"
    model = LocalModel("AutoETS", SETTING)
    got = model.forecast(series)
    assert model.fell_back_ == {"tiny"}
    assert got["tiny"].shape == (6, 4)
    np.testing.assert_allclose(got["tiny"][:, 0], series["tiny"].iloc[-1])  # Naive's mean
    assert np.all(np.diff(got["tiny"][:, 1:], axis=1) >= 0)  # its own intervals, ordered
    refit = LocalModel("AutoETS", SETTING).fit(series)
    assert refit.fell_back_ == {"tiny"}
    np.testing.assert_allclose(refit.predict(series)["tiny"][:, 0], series["tiny"].iloc[-1])


def test_a_model_that_refuses_every_item_fails_instead_of_posing_as_naive():
    short = {k: v.iloc[:3] for k, v in histories(3).items()}
    with pytest.raises(ValueError, match="refused every one of the 3 series"):
        LocalModel("AutoETS", SETTING).forecast(short)


def test_the_job_notes_which_candidate_refused_series(tmp_path):
    import tabpilot.forecast

    frames = [s.rename("y").rename_axis("ds").reset_index().assign(id=k)
              for k, s in histories(3, n=60).items()]
    # 24 points (the fewest a horizon of 6 allows): the earliest of 3 backtest windows of 6
    # leaves 6 to train on, too few for AutoETS ("tiny datasets")
    frames.append(histories(1, n=24, seed=1)["s0"].rename("y").rename_axis("ds")
                  .reset_index().assign(id="short"))
    table = pd.concat(frames, ignore_index=True)
    result = tabpilot.forecast.fit(
        table, tmp_path, target="y", timestamp="ds", item_id="id", frequency="1M",
        horizon=6, time_limit=120, candidates=["SeasonalNaive", "AutoETS"], name="refusals",
        filling={"backfill": "none"}, execute_notebook=False)
    board = result.leaderboard
    assert "AutoETS" in set(board["candidate"])
    assert any(n.startswith("AutoETS refused 1 of the 4 series") for n in result.notes), result.notes
