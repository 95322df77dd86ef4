"""Score a model on held-out rows that carry the true target: metrics with bootstrap
confidence intervals (`tabpilot evaluate`, `AutoML.evaluate`).

The validation score on the leaderboard was measured on rows the search chose from; a
table the job never saw says how the model does on new data, and the interval says how
much of a difference between two models that table can show at all. Metrics are the
job's own (`tabpilot.metrics`: Autopilot's names and scoring, the model's tuned
threshold) and the intervals come from `reports/bootstrap.py`'s resamples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tabpilot.artifacts import Model
from tabpilot.artifacts.validate import PYTHON_HINT, listed
from tabpilot.errors import ConfigError, TargetError, shown
from tabpilot.features.columns import category_string
from tabpilot.metrics import STANDARD_METRICS, resolve_metric, score
from tabpilot.reports.bootstrap import resample_counts, resampled_metrics
from tabpilot.tasks import ProblemType

ROUNDS = 1000  # bootstrap resamples: milliseconds for tens of thousands of rows
EXTRA = {ProblemType.REGRESSION: ["MAPE"]}  # beside the job's metrics, for people


def evaluate(model: Model, df: pd.DataFrame, target: str | None = None,
             metric: str | None = None, confidence: float = 0.95, *,
             on_bad_value: str = "error", rounds: int = ROUNDS, seed: int = 0,
             hint: str = PYTHON_HINT) -> dict[str, Any]:
    """The model's metrics on `df`, whose `target` column (default: the job's target, from
    the model's metadata) holds the true values; rows without one are left out.

    Returns {"rows", "rows_without_target", "target", "problem_type", "objective",
    "positive_class" (binary), "confidence", "rounds", "metrics": {name: {"value",
    "lower", "upper"}}, "input_check"}. `metric` is the objective listed first (default:
    the job's); every standard metric of the problem type follows (classification:
    accuracy, balanced accuracy, F1, AUC, log loss, precision, recall; regression: MSE,
    RMSE, MAE, R2, MAPE). `lower`/`upper` bound the central `confidence` share of
    `rounds` bootstrap resamples (NaN where too few resamples define the metric).
    """
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}")
    target = target or model.metadata.get("target")
    if not target:
        raise TargetError("the model does not record its target column; name it "
                          "(--target COLUMN, or target= in Python)")
    if target not in df.columns:
        raise TargetError(f"the table has no column {shown(target)} (the target); evaluate "
                          "needs the true values beside the features")
    ptype = model.problem_type
    truth = df[target]
    known = truth.notna().to_numpy()
    if not known.any():
        raise TargetError(f"every value of {shown(target)} is missing; nothing to evaluate")
    rows = df.loc[known]
    features, found = model.check(rows.drop(columns=[target]), on_bad_value, hint=hint)
    objective = resolve_metric(metric or model.metadata.get("objective_metric"), ptype)
    threshold = model.predictor.threshold
    if ptype.is_classification:
        y = _class_indices(truth[known].to_numpy(), list(model.classes or []), target)
        pred = model.predictor.predict_proba(features).to_numpy()
    else:
        y = pd.to_numeric(truth[known], errors="coerce").to_numpy(dtype=np.float64)
        if np.isnan(y).any():
            bad = truth[known][np.isnan(y)].iloc[0]
            raise TargetError(f"the target {shown(target)} holds {shown(bad)}, not a number; "
                              "a regression model is evaluated on numbers")
        pred = np.asarray(model.predictor.predict(features), dtype=np.float64)
    names = list(dict.fromkeys([objective.name, *STANDARD_METRICS[ptype], *EXTRA.get(ptype, [])]))
    metrics = _with_intervals(ptype, names, y, pred, threshold, confidence, rounds, seed)
    out: dict[str, Any] = {
        "rows": int(known.sum()), "rows_without_target": int((~known).sum()),
        "target": target, "problem_type": ptype.value, "objective": objective.name,
        "confidence": confidence, "rounds": rounds, "metrics": metrics,
        "input_check": found.record(),
    }
    if ptype is ProblemType.BINARY:
        out["positive_class"] = _plain((model.classes or [None, None])[1])
    return out


def _class_indices(values: np.ndarray, classes: list, target: str) -> np.ndarray:
    """Each true label's position in the model's classes (1, 1.0 and "1" alike)."""
    lookup = {category_string(c): i for i, c in enumerate(classes)}
    labels = [category_string(v) for v in values]
    unknown = sorted({v for v in labels if v not in lookup}, key=str)
    if unknown:
        raise TargetError(f"the target {shown(target)} holds label(s) the model does not "
                          f"predict: {listed(unknown)}; its classes are {listed(classes)}")
    return np.array([lookup[v] for v in labels], dtype=np.int64)


def _with_intervals(ptype: ProblemType, names: list[str], y: np.ndarray, pred: np.ndarray,
                    threshold: float | None, confidence: float, rounds: int, seed: int
                    ) -> dict[str, dict[str, float]]:
    draws = resampled_metrics(ptype, y, pred, threshold, rounds, seed)
    tail = (1 - confidence) / 2
    out = {}
    for name in names:
        if name == "MAPE":
            value, values = _mape(y, pred), _mape_draws(y, pred, rounds, seed)
        else:
            value = score(resolve_metric(name, ptype), y, pred, None, threshold)
            values = draws[name] if name in draws else \
                _weighted_draws(name, ptype, y, pred, threshold, rounds, seed)
        finite = values[np.isfinite(values)]
        lower, upper = (np.quantile(finite, [tail, 1 - tail]) if len(finite) >= 2
                        else (np.nan, np.nan))
        out[name] = {"value": float(value), "lower": float(lower), "upper": float(upper)}
    return out


def _weighted_draws(name: str, ptype: ProblemType, y: np.ndarray, pred: np.ndarray,
                    threshold: float | None, rounds: int, seed: int) -> np.ndarray:
    """A metric the vectorised resampler does not compute (a macro metric chosen as a
    binary job's objective), scored on each resample as row weights."""
    metric = resolve_metric(name, ptype)
    return np.array([score(metric, y, pred, w, threshold)
                     for counts in resample_counts(len(y), rounds, seed) for w in counts])


def _mape(y: np.ndarray, pred: np.ndarray) -> float:
    """scikit-learn's mean_absolute_percentage_error (a fraction, not per cent)."""
    return float(np.mean(_ape(y, pred)))


def _ape(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return np.abs(y - pred) / np.maximum(np.abs(y), np.finfo(np.float64).eps)


def _mape_draws(y: np.ndarray, pred: np.ndarray, rounds: int, seed: int) -> np.ndarray:
    ape = _ape(y, pred)
    return np.concatenate([counts @ ape / counts.sum(axis=1)
                           for counts in resample_counts(len(y), rounds, seed)])


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
