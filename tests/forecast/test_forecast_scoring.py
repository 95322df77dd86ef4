"""Metrics against hand computations, backtest windows, the ensemble's guarantees."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabpilot.forecast import backtest, ensemble, metrics


def test_weighted_quantile_loss_equals_a_hand_computation():
    y = np.array([10.0, 20.0])
    q = np.array([[8.0, 12.0], [25.0, 18.0]])  # columns: quantile 0.1, 0.9
    # q0.1: y>=q -> 0.1*(10-8)=0.2; y<q -> 0.9*(25-20)=4.5 ; q0.9: 0.1*(12-10)... (q-1)*(y-q)
    p10 = 0.1 * 2 + 0.9 * 5
    p90 = 0.1 * 2 + 0.9 * 2
    total = 30.0
    expected = [2 * p10 / total, 2 * p90 / total]
    assert metrics.weighted_quantile_losses(y, q, [0.1, 0.9]) == pytest.approx(expected)
    assert metrics.average_wql(y, q, [0.1, 0.9]) == pytest.approx(np.mean(expected))


def test_point_metrics_equal_hand_computations():
    y, f = np.array([10.0, 20.0, 0.0]), np.array([12.0, 15.0, 1.0])
    assert metrics.wape(y, f) == pytest.approx(8 / 30)
    assert metrics.rmse(y, f) == pytest.approx(np.sqrt((4 + 25 + 1) / 3))
    assert metrics.mape(y, f) == pytest.approx((0.2 + 0.25) / 2)  # the zero is left out
    train = np.array([1.0, 2, 3, 1, 2, 3, 1, 2, 3])
    assert metrics.mase_scale(train, 3) == 1.0  # a perfect season: falls back to 1
    assert metrics.mase_scale(np.array([1.0, 3, 2, 5]), 7) == pytest.approx((2 + 1 + 3) / 3)  # naive


def history(n: int, start: str = "2024-01-01") -> pd.Series:
    return pd.Series(np.arange(n, dtype=float), index=pd.date_range(start, periods=n, freq="D"))


def test_backtest_windows_are_expanding_and_end_at_each_series_end():
    hist = {"a": history(40), "b": history(30, "2024-01-05")}
    wins = backtest.windows(hist, horizon=5, n_windows=3, season=7)
    assert [len(w.train["a"]) for w in wins] == [25, 30, 35]
    assert [len(w.train["b"]) for w in wins] == [15, 20, 25]
    for w in wins:
        for item in hist:
            cut = len(w.train[item])  # the values are the positions
            assert w.actual[item].tolist() == list(range(cut, cut + 5))
    assert wins[-1].actual["a"][-1] == 39  # the last window ends at the series' end


def test_ensemble_is_never_worse_than_its_best_member_and_never_crosses():
    rng = np.random.default_rng(0)
    hist = {f"i{k}": pd.Series(50 + rng.normal(0, 5, 60),
                               index=pd.date_range("2024-01-01", periods=60)) for k in range(3)}
    wins = backtest.windows(hist, horizon=6, n_windows=3, season=7)
    quantiles = [0.1, 0.5, 0.9]

    def member(bias: float, spread: float, cross: bool = False):
        out = []
        for w in wins:
            f = {}
            for i, y in w.actual.items():
                m = y + bias + rng.normal(0, 3, len(y))
                lo, hi = m - spread, m + spread
                f[i] = np.column_stack([m, hi if cross else lo, m, lo if cross else hi])
            out.append(f)
        return out

    members = [member(2.0, 4.0), member(-2.0, 6.0), member(0.0, 1.0, cross=True)]
    for objective in ("AverageWeightedQuantileLoss", "WAPE", "MASE", "RMSE"):
        weights = ensemble.select(wins, members, quantiles, objective)
        assert np.allclose(weights.sum(axis=0), 1)
        blended = [ensemble.combine([m[k] for m in members], weights) for k in range(3)]
        best = min(backtest.score(wins, m, quantiles)[objective] for m in members)
        assert backtest.score(wins, blended, quantiles)[objective] <= best + 1e-9
        for window in blended:
            for values in window.values():
                assert (np.diff(values[:, 1:], axis=1) >= 0).all()
