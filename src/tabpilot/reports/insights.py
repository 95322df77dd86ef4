"""Model insights from validation predictions: metrics with confidence intervals and the
curves and tables Autopilot's model-insights report shows, for every problem type.

Everything is computed from (y, predictions) on the validation rows the candidate was
scored on, so it costs no training and no prediction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm

from tabpilot.metrics import labels_from_proba, score_all
from tabpilot.reports.bootstrap import resampled_metrics
from tabpilot.tasks import ProblemType

BOOTSTRAP_ROUNDS = 200
MAX_ROWS = 50_000  # beyond this, a seeded sample keeps reports within their time share
CURVE_POINTS = 101


def _sample(y: np.ndarray, pred: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    if len(y) <= MAX_ROWS:
        return y, pred
    idx = np.random.default_rng(seed).choice(len(y), MAX_ROWS, replace=False)
    return y[idx], pred[idx]


def bootstrap_intervals(problem_type: ProblemType, y: np.ndarray, pred: np.ndarray,
                        threshold: float | None, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0
                        ) -> dict[str, dict[str, float]]:
    """95 % percentile intervals of every standard metric over bootstrap resamples."""
    draws = resampled_metrics(problem_type, y, pred, threshold, rounds, seed)
    point = score_all(problem_type, y, pred, None, threshold)
    out = {}
    for name, values in draws.items():
        v = values[np.isfinite(values)]
        out[name] = {"value": point[name],
                     "lower": float(np.quantile(v, 0.025)) if len(v) else float("nan"),
                     "upper": float(np.quantile(v, 0.975)) if len(v) else float("nan")}
    return out


def _downsample_curve(x: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float]]:
    if len(x) > CURVE_POINTS:
        idx = np.unique(np.linspace(0, len(x) - 1, CURVE_POINTS).astype(int))
        x, y = x[idx], y[idx]
    return [round(float(v), 6) for v in x], [round(float(v), 6) for v in y]


def binary_insights(y: np.ndarray, proba: np.ndarray, threshold: float, classes: list
                    ) -> dict[str, Any]:
    p = proba[:, 1]
    fpr, tpr, _ = skm.roc_curve(y, p)
    precision, recall, _ = skm.precision_recall_curve(y, p)
    labels = (p >= threshold).astype(int)
    order = np.argsort(-p, kind="stable")
    deciles = np.array_split(order, 10)
    base_rate = max(float(y.mean()), 1e-12)
    captured = np.cumsum([y[d].sum() for d in deciles]) / max(y.sum(), 1)
    frac_pos, mean_pred = _calibration(y, p)
    return {
        "positive_class": classes[1],
        "threshold": threshold,
        "roc_curve": dict(zip(("fpr", "tpr"), _downsample_curve(fpr, tpr), strict=True)),
        # areas on every row, not on the downsampled curves the charts draw
        "roc_auc": _area(skm.roc_auc_score, y, p),
        "average_precision": _area(skm.average_precision_score, y, p),
        "positive_rate": float(y.mean()),
        "precision_recall_curve": dict(zip(("recall", "precision"),
                                           _downsample_curve(recall[::-1], precision[::-1]),
                                           strict=True)),
        "confusion_matrix": {"labels": classes,
                             "matrix": skm.confusion_matrix(y, labels, labels=[0, 1]).tolist()},
        "gain_lift": [{"decile": i + 1, "rows": int(len(d)), "positive_rate": float(y[d].mean()),
                       "lift": float(y[d].mean() / base_rate), "cumulative_gain": float(g)}
                      for i, (d, g) in enumerate(zip(deciles, captured, strict=True)) if len(d)],
        "calibration": {"mean_predicted": mean_pred, "fraction_positive": frac_pos},
    }


def _area(measure, y: np.ndarray, p: np.ndarray) -> float:
    """An area under a curve, NaN when one class is absent (no curve to measure)."""
    return float(measure(y, p)) if len(np.unique(y)) == 2 else float("nan")


def _calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> tuple[list[float], list[float]]:
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    frac, mean = [], []
    for b in range(bins):
        mask = which == b
        if mask.any():
            frac.append(float(y[mask].mean()))
            mean.append(float(p[mask].mean()))
    return frac, mean


def multiclass_insights(y: np.ndarray, proba: np.ndarray, classes: list) -> dict[str, Any]:
    labels = np.argmax(proba, axis=1)
    k = len(classes)
    matrix = skm.confusion_matrix(y, labels, labels=list(range(k)))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y, labels, labels=list(range(k)), zero_division=0)
    return {
        "confusion_matrix": {"labels": classes, "matrix": matrix.tolist()},
        "per_class": [{"label": classes[i], "precision": float(precision[i]),
                       "recall": float(recall[i]), "f1": float(f1[i]),
                       "support": int(support[i])} for i in range(k)],
    }


def regression_insights(y: np.ndarray, pred: np.ndarray, max_points: int = 2000
                        ) -> dict[str, Any]:
    residuals = y - pred
    std = float(residuals.std()) or 1.0
    standardized = residuals / std
    idx = np.random.default_rng(0).choice(len(y), min(len(y), max_points), replace=False)
    counts, edges = np.histogram(residuals, bins=30)
    outliers = np.flatnonzero(np.abs(standardized) > 3)
    return {
        "actual_vs_predicted": {"actual": y[idx].round(6).tolist(),
                                "predicted": pred[idx].round(6).tolist()},
        "residual_histogram": {"counts": counts.tolist(), "edges": edges.round(6).tolist()},
        "residual_std": std,
        "standardized_residual_outliers": [
            {"row": int(i), "actual": float(y[i]), "predicted": float(pred[i]),
             "standardized_residual": float(standardized[i])} for i in outliers[:100]],
        "outlier_count": int(len(outliers)),
    }


def model_insights(problem_type: ProblemType, y: np.ndarray, pred: np.ndarray,
                   classes: list | None, threshold: float | None) -> dict[str, Any]:
    """Everything insights.json holds, from validation labels and predictions."""
    y, pred = _sample(y, pred)
    out: dict[str, Any] = {
        "problem_type": problem_type.value,
        "rows": int(len(y)),
        "metrics": bootstrap_intervals(problem_type, y, pred, threshold),
    }
    if problem_type is ProblemType.BINARY:
        out["binary"] = binary_insights(y, pred, threshold if threshold is not None else 0.5,
                                        list(classes or []))
    elif problem_type is ProblemType.MULTICLASS:
        out["multiclass"] = multiclass_insights(y, pred, list(classes or []))
    else:
        out["regression"] = regression_insights(y, pred)
    if problem_type.is_classification:
        out["predicted_label_counts"] = np.bincount(
            labels_from_proba(pred, threshold), minlength=len(classes or [])).tolist()
    return out
