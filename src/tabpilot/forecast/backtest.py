"""Expanding-origin backtest: `n_windows` windows of `horizon` points at each series' end.

Window w (0 = earliest) of a series of n points trains on its first
n - (n_windows - w) * horizon points and is scored on the next `horizon`. Series may end
at different dates (no backfill), so windows are by position within each series. Every
candidate is scored on every window, per item and per quantile; `score` pools a window's
items as Autopilot does (one wQL, WAPE, ... per window) and averages the windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tabpilot.forecast import metrics
from tabpilot.forecast.candidates import Forecasts, Histories


@dataclass
class Window:
    """One backtest window: each item's training history and the values to forecast."""

    index: int
    train: Histories
    actual: dict[str, np.ndarray]
    scales: dict[str, float]  # each item's MASE scale, from its training part


def windows(histories: Histories, horizon: int, n_windows: int, season: int) -> list[Window]:
    out = []
    for w in range(n_windows):
        back = (n_windows - w) * horizon
        train = {i: s.iloc[: len(s) - back] for i, s in histories.items()}
        actual = {i: s.to_numpy(float)[len(s) - back: len(s) - back + horizon]
                  for i, s in histories.items()}
        scales = {i: metrics.mase_scale(t.to_numpy(float), season) for i, t in train.items()}
        out.append(Window(w, train, actual, scales))
    return out


def window_metrics(window: Window, forecast: Forecasts, quantiles: list[float]) -> dict[str, float]:
    """The window's metrics over all its items (MASE: the mean of the items')."""
    items = list(window.actual)
    y = np.concatenate([window.actual[i] for i in items])
    f = np.vstack([forecast[i] for i in items])
    pooled = metrics.all_metrics(y, f[:, 0], f[:, 1:], quantiles, 1.0)
    pooled["MASE"] = float(np.mean([metrics.mase(window.actual[i], forecast[i][:, 0],
                                                 window.scales[i]) for i in items]))
    return pooled


def item_metrics(window: Window, forecast: Forecasts, quantiles: list[float]
                 ) -> dict[str, dict[str, float]]:
    """Per item: every metric and the wQL at each quantile."""
    out = {}
    for i, y in window.actual.items():
        f = forecast[i]
        row = metrics.all_metrics(y, f[:, 0], f[:, 1:], quantiles, window.scales[i])
        wql = metrics.weighted_quantile_losses(y, f[:, 1:], quantiles)
        row.update({f"wQL[{q:g}]": float(v) for q, v in zip(quantiles, wql, strict=True)})
        out[i] = row
    return out


def score(wins: list[Window], forecasts: list[Forecasts], quantiles: list[float]
          ) -> dict[str, float]:
    """Every metric, averaged over the windows."""
    per = [window_metrics(w, f, quantiles) for w, f in zip(wins, forecasts, strict=True)]
    return {k: float(np.nanmean([p[k] for p in per])) for k in per[0]}
