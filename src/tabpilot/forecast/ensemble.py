"""Greedy weighted selection of candidates on their backtest forecasts, per column.

Each column (the mean, then each quantile) gets its own weights: Caruana's selection with
replacement, the first pick being the best single candidate for that column, so no column
is worse than its best member. The loss of a column is the objective's exact per-point
decomposition over the backtest (wQL over a window is a sum of pinball losses weighted by
2 / (windows x sum |y| of that window), and so on), so the selection optimises what the
leaderboard shows. Combined quantiles are sorted per row: they never cross.
"""

from __future__ import annotations

import numpy as np

from tabpilot.forecast import metrics
from tabpilot.forecast.backtest import Window
from tabpilot.forecast.candidates import Forecasts

ROUNDS = 25


def stack(wins: list[Window], forecasts: list[Forecasts]) -> np.ndarray:
    """One candidate's backtest forecasts as one (points, 1 + k) array, windows then items."""
    return np.vstack([f[i] for w, f in zip(wins, forecasts, strict=True) for i in w.actual])


def _point_weights(wins: list[Window], objective: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y, the weight of each point's absolute (or pinball) error in the objective, and the
    weight of its squared error (RMSE's, approximately: squared errors per window)."""
    ys, lin, sq = [], [], []
    n = len(wins)
    for w in wins:
        y = np.concatenate([w.actual[i] for i in w.actual])
        total = max(float(np.abs(y).sum()), 1e-12)
        ys.append(y)
        if objective == "MASE":
            per = [np.full(len(w.actual[i]), 1 / (len(w.actual) * len(w.actual[i]) * w.scales[i]))
                   for i in w.actual]
            lin.append(np.concatenate(per) / n)
        elif objective == "MAPE":
            lin.append(np.where(y != 0, 1 / np.where(y != 0, np.abs(y), 1), 0) / n / len(y))
        else:  # WAPE; and the wQL's quantile columns below
            lin.append(np.full(len(y), 1 / (n * total)))
        sq.append(np.full(len(y), 1 / (n * len(y))))
    return np.concatenate(ys), np.concatenate(lin), np.concatenate(sq)


def _column_loss(y: np.ndarray, pred: np.ndarray, column: int, quantiles: list[float],
                 objective: str, lin: np.ndarray, sq: np.ndarray, wql: np.ndarray) -> float:
    if column > 0:
        return float((metrics.pinball(y, pred, quantiles[column - 1]) * 2 * wql).sum())
    if objective == "RMSE":
        return float(((y - pred) ** 2 * sq).sum())
    weights = wql if objective == "AverageWeightedQuantileLoss" else lin
    return float((np.abs(y - pred) * weights).sum())


def select(wins: list[Window], member_forecasts: list[list[Forecasts]], quantiles: list[float],
           objective: str) -> np.ndarray:
    """Weights (members, 1 + k), each column summing to 1."""
    arrays = np.stack([stack(wins, f) for f in member_forecasts])  # (m, points, 1 + k)
    y, lin, sq = _point_weights(wins, objective)
    _, wql, _ = _point_weights(wins, "WAPE")
    m, _, cols = arrays.shape
    weights = np.zeros((m, cols))
    for c in range(cols):
        counts = np.zeros(m)
        best_loss, best_counts = np.inf, None
        for _ in range(ROUNDS):
            trial = [_column_loss(y, (arrays[:, :, c].T @ (counts + np.eye(m)[j])) /
                                  (counts.sum() + 1), c, quantiles, objective, lin, sq, wql)
                     for j in range(m)]
            j = int(np.argmin(trial))
            counts[j] += 1
            if trial[j] < best_loss - 1e-12:
                best_loss, best_counts = trial[j], counts.copy()
        assert best_counts is not None
        weights[:, c] = best_counts / best_counts.sum()
    return weights


def combine(forecasts: list[Forecasts], weights: np.ndarray) -> Forecasts:
    """The members' forecasts weighted per column, quantiles sorted per row."""
    out = {}
    for item in forecasts[0]:
        parts = np.stack([f[item] for f in forecasts])  # (m, h, 1 + k)
        mixed = np.einsum("mhc,mc->hc", parts, weights)
        mixed[:, 1:] = np.sort(mixed[:, 1:], axis=1)
        out[item] = mixed
    return out
