"""Objective metrics under Autopilot's names, their defaults, and threshold tuning."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from tabpilot.errors import ConfigError
from tabpilot.tasks import ProblemType

# y_true holds encoded labels (0..k-1) for classification; `pred` is the class
# probability matrix for classification and the predicted values for regression.
ScoreFn = Callable[[np.ndarray, np.ndarray, np.ndarray, "np.ndarray | None"], float]


@dataclass(frozen=True)
class Metric:
    name: str
    greater_is_better: bool
    problem_types: frozenset[ProblemType]
    needs_labels: bool  # computed on hard labels (threshold / argmax), not probabilities
    fn: Callable[..., float]

    def __reduce__(self):  # pickled by name: the scoring functions are lambdas
        return (_metric_named, (self.name,))

    def sign(self) -> float:
        return 1.0 if self.greater_is_better else -1.0

    def is_better(self, a: float, b: float | None) -> bool:
        if b is None or not np.isfinite(b):
            return bool(np.isfinite(a))
        return a > b if self.greater_is_better else a < b


BIN, MULTI, REG = ProblemType.BINARY, ProblemType.MULTICLASS, ProblemType.REGRESSION
CLS = frozenset({BIN, MULTI})


def _auc(y, proba, w):
    if proba.shape[1] == 2:
        return skm.roc_auc_score(y, proba[:, 1], sample_weight=w)
    return skm.roc_auc_score(y, proba, multi_class="ovr", sample_weight=w)


def _logloss(y, proba, w):
    labels = np.arange(proba.shape[1])
    p = np.clip(proba, 1e-15, None)
    return skm.log_loss(y, p / p.sum(axis=1, keepdims=True), labels=labels, sample_weight=w)


def _binary_label(fn):
    return lambda y, labels, w: fn(y, labels, sample_weight=w, zero_division=0)


def _macro_label(fn):
    return lambda y, labels, w: fn(y, labels, average="macro", sample_weight=w, zero_division=0)


def _rmse(y, pred, w):
    return float(np.sqrt(skm.mean_squared_error(y, pred, sample_weight=w)))


METRICS: dict[str, Metric] = {
    m.name: m
    for m in [
        Metric("Accuracy", True, CLS, True, lambda y, p, w: skm.accuracy_score(y, p, sample_weight=w)),
        Metric("BalancedAccuracy", True, CLS, True,
               lambda y, p, w: skm.balanced_accuracy_score(y, p, sample_weight=w)),
        Metric("F1", True, frozenset({BIN}), True, _binary_label(skm.f1_score)),
        Metric("Precision", True, frozenset({BIN}), True, _binary_label(skm.precision_score)),
        Metric("Recall", True, frozenset({BIN}), True, _binary_label(skm.recall_score)),
        Metric("F1macro", True, CLS, True, _macro_label(skm.f1_score)),
        Metric("PrecisionMacro", True, CLS, True, _macro_label(skm.precision_score)),
        Metric("RecallMacro", True, CLS, True, _macro_label(skm.recall_score)),
        Metric("AUC", True, CLS, False, _auc),
        Metric("LogLoss", False, CLS, False, _logloss),
        Metric("MAE", False, frozenset({REG}), False,
               lambda y, p, w: skm.mean_absolute_error(y, p, sample_weight=w)),
        Metric("MSE", False, frozenset({REG}), False,
               lambda y, p, w: skm.mean_squared_error(y, p, sample_weight=w)),
        Metric("RMSE", False, frozenset({REG}), False, _rmse),
        Metric("R2", True, frozenset({REG}), False,
               lambda y, p, w: skm.r2_score(y, p, sample_weight=w)),
    ]
}

def _metric_named(name: str) -> Metric:
    return METRICS[name]


DEFAULT_METRIC = {BIN: "F1", MULTI: "Accuracy", REG: "MSE"}

STANDARD_METRICS = {
    BIN: ["F1", "Accuracy", "AUC", "BalancedAccuracy", "Precision", "Recall", "LogLoss"],
    MULTI: ["Accuracy", "BalancedAccuracy", "F1macro", "PrecisionMacro", "RecallMacro",
            "LogLoss", "AUC"],
    REG: ["MSE", "RMSE", "MAE", "R2"],
}


def resolve_metric(name: str | None, problem_type: ProblemType) -> Metric:
    """The metric object for `name` (Autopilot's spelling, case-insensitive)."""
    if name is None:
        return METRICS[DEFAULT_METRIC[problem_type]]
    by_lower = {k.lower(): v for k, v in METRICS.items()}
    metric = by_lower.get(name.strip().lower())
    if metric is None:
        raise ConfigError(f"unknown metric {name!r}; use one of: {', '.join(METRICS)}")
    if problem_type not in metric.problem_types:
        fitting = ", ".join(m.name for m in METRICS.values() if problem_type in m.problem_types)
        raise ConfigError(
            f"metric {metric.name} does not fit a {problem_type.value} problem; "
            f"use one of: {fitting}"
        )
    return metric


def check_metric_name(name: str) -> None:
    """Fail early on a name that is no metric at all (before the data is read)."""
    if name.strip().lower() not in {k.lower() for k in METRICS}:
        raise ConfigError(f"unknown metric {name!r}; use one of: {', '.join(METRICS)}")


def labels_from_proba(proba: np.ndarray, threshold: float | None) -> np.ndarray:
    if proba.shape[1] == 2 and threshold is not None:
        return (proba[:, 1] >= threshold).astype(np.int64)
    return np.argmax(proba, axis=1)


def score(metric: Metric, y: np.ndarray, pred: np.ndarray, weights: np.ndarray | None = None,
          threshold: float | None = None) -> float:
    try:
        if metric.needs_labels:
            return float(metric.fn(y, labels_from_proba(pred, threshold), weights))
        return float(metric.fn(y, pred, weights))
    except ValueError:
        return float("nan")


def score_all(problem_type: ProblemType, y: np.ndarray, pred: np.ndarray,
              weights: np.ndarray | None = None, threshold: float | None = None
              ) -> dict[str, float]:
    """Every standard metric of the problem type."""
    return {
        name: score(METRICS[name], y, pred, weights, threshold)
        for name in STANDARD_METRICS[problem_type]
    }


def tune_threshold(metric: Metric, y: np.ndarray, proba: np.ndarray,
                   weights: np.ndarray | None = None) -> float:
    """The decision threshold on P(positive) that maximises a label metric on validation."""
    if not metric.needs_labels or proba.shape[1] != 2:
        return 0.5
    p = proba[:, 1]
    candidates = np.unique(np.quantile(p, np.linspace(0.01, 0.99, 99)))
    candidates = np.unique(np.concatenate([candidates, [0.5]]))
    best_t, best = 0.5, -np.inf
    for t in candidates:
        value = metric.fn(y, (p >= t).astype(np.int64), weights)
        # prefer the threshold nearest 0.5 among ties, for stability on new data
        if value > best + 1e-12 or (abs(value - best) <= 1e-12 and abs(t - 0.5) < abs(best_t - 0.5)):
            best_t, best = float(t), value
    return best_t
