"""Autopilot's forecasting metrics, over arrays of true values and forecasts.

All take `y` (n,), `mean` (n,) and, for the quantile loss, `q` (n, k) at `quantiles`
(k,). The weighted quantile loss follows Autopilot / GluonTS: for each quantile
2 * sum(pinball) / sum(|y|), and AverageWeightedQuantileLoss is their mean. MASE scales by
the in-sample seasonal naive error of each series, so it needs the training values.
"""

from __future__ import annotations

import numpy as np

LOWER_IS_BETTER = True  # every forecasting objective is a loss


def pinball(y: np.ndarray, q: np.ndarray, quantile: float) -> np.ndarray:
    """The quantile (pinball) loss of each point."""
    diff = y - q
    return np.maximum(quantile * diff, (quantile - 1) * diff)


def weighted_quantile_losses(y: np.ndarray, q: np.ndarray, quantiles: list[float]) -> np.ndarray:
    """wQL at each quantile: 2 * sum of pinball losses / sum |y|."""
    scale = max(float(np.abs(y).sum()), 1e-12)
    return np.array([2 * pinball(y, q[:, j], tau).sum() / scale for j, tau in enumerate(quantiles)])


def average_wql(y: np.ndarray, q: np.ndarray, quantiles: list[float]) -> float:
    return float(weighted_quantile_losses(y, q, quantiles).mean())


def wape(y: np.ndarray, mean: np.ndarray) -> float:
    return float(np.abs(y - mean).sum() / max(float(np.abs(y).sum()), 1e-12))


def rmse(y: np.ndarray, mean: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - mean) ** 2)))


def mape(y: np.ndarray, mean: np.ndarray) -> float:
    """Mean |error / y| over the points where y is not zero (undefined there)."""
    keep = y != 0
    return float(np.mean(np.abs((y[keep] - mean[keep]) / y[keep]))) if keep.any() else float("nan")


def mase_scale(train: np.ndarray, season: int) -> float:
    """The in-sample mean absolute error of the seasonal naive forecast (naive when the
    series is shorter than two seasons); 1 when that error is zero (a flat series)."""
    m = season if len(train) > 2 * season else 1
    scale = float(np.mean(np.abs(train[m:] - train[:-m]))) if len(train) > m else 0.0
    return scale if scale > 0 else 1.0


def mase(y: np.ndarray, mean: np.ndarray, scale: float) -> float:
    return float(np.mean(np.abs(y - mean)) / scale)


def all_metrics(y: np.ndarray, mean: np.ndarray, q: np.ndarray, quantiles: list[float],
                scale: float) -> dict[str, float]:
    """Every objective on one set of points (one item's window, or many pooled)."""
    return {"AverageWeightedQuantileLoss": average_wql(y, q, quantiles), "WAPE": wape(y, mean),
            "MASE": mase(y, mean, scale), "MAPE": mape(y, mean), "RMSE": rmse(y, mean)}
