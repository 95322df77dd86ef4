"""Model-quality metrics in the shape of Model Monitor's statistics.json, and model-quality
constraints (constraints.json) with their comparison operators.

Every metric is computed from row weights: the value with every row once, its standard
deviation over ROUNDS bootstrap resamples (`reports/bootstrap.resample_counts`: how often
each row is drawn), so a resample is a matrix product, not a loop over rows. The values
equal scikit-learn's on the same pairs (zero_division=0). Model Monitor gives a standard
deviation only from MIN_ROWS_FOR_SPREAD rows on ("NaN" below, as it writes it); it
resamples 80 % of the rows five times, tabpilot bootstraps, which is what a standard
error of the metric means.

Binary metrics take one label as positive. The "best constant classifier" is Model
Monitor's: for binary problems the classifier that always answers positive (its
recall is 1, its precision the positive share), for multiclass problems the one that
always answers the most frequent true label (the constant with the best accuracy).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tabpilot.errors import ConfigError
from tabpilot.reports.bootstrap import resample_counts
from tabpilot.tasks import ProblemType

ROUNDS = 100
MIN_ROWS_FOR_SPREAD = 200
NAN = "NaN"  # how Model Monitor writes an undefined value in its JSON
SECTIONS = {ProblemType.BINARY: "binary_classification",
            ProblemType.MULTICLASS: "multiclass_classification",
            ProblemType.REGRESSION: "regression"}
BETAS = {"f0_5": 0.5, "f1": 1.0, "f2": 2.0}
# metrics a suggested baseline constrains, and the operator that flags a worse value
LOWER_IS_WORSE, HIGHER_IS_WORSE = "LessThanThreshold", "GreaterThanThreshold"
CONSTRAINED = {
    ProblemType.BINARY: {**{m: LOWER_IS_WORSE for m in (
        "recall", "precision", "accuracy", "true_positive_rate", "true_negative_rate", "auc",
        "f0_5", "f1", "f2")}, "false_positive_rate": HIGHER_IS_WORSE,
        "false_negative_rate": HIGHER_IS_WORSE},
    ProblemType.MULTICLASS: {m: LOWER_IS_WORSE for m in (
        "accuracy", "weighted_recall", "weighted_precision", "weighted_f0_5", "weighted_f1",
        "weighted_f2")},
    ProblemType.REGRESSION: {"mae": HIGHER_IS_WORSE, "mse": HIGHER_IS_WORSE,
                             "rmse": HIGHER_IS_WORSE, "r2": LOWER_IS_WORSE},
}
OPERATORS = {
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
}


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _fbeta(beta: float, tp, actual, predicted) -> np.ndarray:
    b2 = beta * beta
    return _div((1 + b2) * tp, b2 * actual + predicted)


def _auc(w: np.ndarray, positive: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Weighted ROC AUC per row of weights `w` (ties count half); NaN without both classes."""
    values, groups = np.unique(scores, return_inverse=True)
    k = len(values)
    pos = np.stack([np.bincount(groups[positive], row[positive], k) for row in w])
    neg = np.stack([np.bincount(groups[~positive], row[~positive], k) for row in w])
    below = np.cumsum(neg, axis=1) - neg
    total_pos, total_neg = pos.sum(axis=1), neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (pos * (below + 0.5 * neg)).sum(axis=1) / (total_pos * total_neg)
    return np.where((total_pos > 0) & (total_neg > 0), auc, np.nan)


def _binary(w: np.ndarray, truth: np.ndarray, predicted: np.ndarray,
            score: np.ndarray | None) -> dict[str, np.ndarray]:
    tp, fp = w @ (truth & predicted), w @ (~truth & predicted)
    fn, tn = w @ (truth & ~predicted), w @ (~truth & ~predicted)
    n = tp + fp + fn + tn
    actual, called = tp + fn, tp + fp
    out = {"recall": _div(tp, actual), "precision": _div(tp, called),
           "accuracy": (tp + tn) / n,
           "recall_best_constant_classifier": (actual > 0).astype(float),
           "precision_best_constant_classifier": actual / n,
           "accuracy_best_constant_classifier": actual / n,
           "true_positive_rate": _div(tp, actual), "true_negative_rate": _div(tn, tn + fp),
           "false_positive_rate": _div(fp, tn + fp), "false_negative_rate": _div(fn, actual)}
    if score is not None:
        out["auc"] = _auc(w, truth, score)
    for name, beta in BETAS.items():
        out[name] = _fbeta(beta, tp, actual, called)
    for name, beta in BETAS.items():  # always positive: tp = actual, predicted = n
        out[f"{name}_best_constant_classifier"] = _fbeta(beta, actual, actual, n)
    return out


def _multiclass(w: np.ndarray, truth: np.ndarray, predicted: np.ndarray, k: int
                ) -> dict[str, np.ndarray]:
    cells = truth * k + predicted
    matrix = np.stack([np.bincount(cells, row, k * k) for row in w]).reshape(-1, k, k)
    tp = np.diagonal(matrix, axis1=1, axis2=2)
    actual, called = matrix.sum(axis=2), matrix.sum(axis=1)
    n = actual.sum(axis=1)
    share = actual / n[:, None]

    def weighted(per_class: np.ndarray) -> np.ndarray:
        return (share * per_class).sum(axis=1)

    top = share.max(axis=1)  # the most frequent label's share: the constant's accuracy
    out = {"accuracy": tp.sum(axis=1) / n, "weighted_recall": weighted(_div(tp, actual)),
           "weighted_precision": weighted(_div(tp, called))}
    for name, beta in BETAS.items():
        out[f"weighted_{name}"] = weighted(_fbeta(beta, tp, actual, called))
    out["accuracy_best_constant_classifier"] = top
    out["weighted_recall_best_constant_classifier"] = top
    out["weighted_precision_best_constant_classifier"] = top * top
    for name, beta in BETAS.items():
        b2 = beta * beta
        out[f"weighted_{name}_best_constant_classifier"] = top * (1 + b2) * top / (b2 * top + 1)
    return out


def _regression(w: np.ndarray, truth: np.ndarray, predicted: np.ndarray
                ) -> dict[str, np.ndarray]:
    n = w.sum(axis=1)
    err = truth - predicted
    sse = w @ err**2
    centred = truth - truth.mean()  # centred sums of squares lose no precision
    mean = w @ centred / n
    sst = w @ centred**2 - n * mean**2
    flat = sst <= 1e-12 * np.maximum(w @ centred**2, 1e-300)
    r2 = np.where(flat, np.where(sse == 0, 1.0, 0.0), 1 - _div(sse, np.where(flat, 1, sst)))
    return {"mae": w @ np.abs(err) / n, "mse": sse / n, "rmse": np.sqrt(sse / n), "r2": r2}


def _entry(value: float, spread: np.ndarray | None) -> dict[str, Any]:
    std = NAN
    if spread is not None:
        finite = spread[np.isfinite(spread)]
        if len(finite) > 1:
            std = float(np.std(finite, ddof=1))
    return {"value": float(value) if math.isfinite(value) else NAN, "standard_deviation": std}


def quality_statistics(problem_type: ProblemType, truth: np.ndarray, predicted: np.ndarray,
                       score: np.ndarray | None = None, *, labels: list[str] | None = None,
                       rounds: int = ROUNDS, seed: int = 0) -> dict[str, Any]:
    """statistics.json of Model Monitor's model quality for pairs (truth, predicted).

    Binary: `truth`/`predicted` are booleans (positive or not), `score` the positive
    class's probability (for auc, optional), `labels` [negative, positive] for the
    confusion matrix. Multiclass: label indices into `labels`. Regression: numbers.
    """
    n = len(truth)
    ones = np.ones((1, n))
    if problem_type is ProblemType.BINARY:
        def compute(w):
            return _binary(w, truth.astype(bool), predicted.astype(bool), score)
        cells = [[int(np.sum((truth == a) & (predicted == p))) for p in (False, True)]
                 for a in (False, True)]
    elif problem_type is ProblemType.MULTICLASS:
        k = len(labels or [])

        def compute(w):
            return _multiclass(w, truth.astype(np.int64), predicted.astype(np.int64), k)
        cells = np.bincount(truth * k + predicted, minlength=k * k).reshape(k, k).tolist()
    else:
        def compute(w):
            return _regression(w, truth.astype(float), predicted.astype(float))
        cells = None
    values = {name: v[0] for name, v in compute(ones).items()}
    spreads: dict[str, list[np.ndarray]] = {name: [] for name in values}
    if n >= MIN_ROWS_FOR_SPREAD:
        for counts in resample_counts(n, rounds, seed):
            for name, v in compute(counts).items():
                spreads[name].append(v)
    section: dict[str, Any] = {}
    if cells is not None:
        names = [str(x) for x in (labels or ["0", "1"])]
        section["confusion_matrix"] = {names[a]: {names[p]: int(cells[a][p])
                                                  for p in range(len(names))}
                                       for a in range(len(names))}
    for name, value in values.items():
        section[name] = _entry(float(value), np.concatenate(spreads[name])
                               if spreads[name] else None)
    if problem_type is ProblemType.BINARY and score is not None:
        section.update(_curves(truth.astype(bool), score))
    return {"version": 0.0, "dataset": {"item_count": int(n)},
            f"{SECTIONS[problem_type]}_metrics": section}


def _curves(truth: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import precision_recall_curve, roc_curve

    if truth.all() or not truth.any():
        return {}
    fpr, tpr, _ = roc_curve(truth, score)
    precision, recall, _ = precision_recall_curve(truth, score)
    return {"receiver_operating_characteristic_curve": {
                "false_positive_rates": fpr.tolist(), "true_positive_rates": tpr.tolist()},
            "precision_recall_curve": {"precisions": precision[::-1].tolist(),
                                       "recalls": recall[::-1].tolist()}}


def metrics_of(statistics: dict[str, Any]) -> tuple[ProblemType, dict[str, Any]]:
    for problem_type, section in SECTIONS.items():
        if f"{section}_metrics" in statistics:
            return problem_type, statistics[f"{section}_metrics"]
    raise ConfigError("the statistics hold no binary_classification_metrics, "
                      "multiclass_classification_metrics or regression_metrics")


def suggest_constraints(statistics: dict[str, Any], margin: float = 2.0) -> dict[str, Any]:
    """constraints.json for baseline `statistics`: each constrained metric may get worse
    than its baseline value by `margin` of the baseline's standard deviations (0: any
    worse value is a violation, Model Monitor's suggestion)."""
    problem_type, metrics = metrics_of(statistics)
    found: dict[str, Any] = {}
    for name, operator in CONSTRAINED[problem_type].items():
        entry = metrics.get(name)
        if not entry or entry["value"] == NAN:
            continue
        std = entry["standard_deviation"]
        slack = margin * std if isinstance(std, float) else 0.0
        worse = -slack if operator == LOWER_IS_WORSE else slack
        found[name] = {"threshold": float(entry["value"]) + worse,
                       "comparison_operator": operator}
    return {"version": 0.0, f"{SECTIONS[problem_type]}_constraints": found}


def check_constraints(constraints: dict[str, Any], problem_type: ProblemType,
                      source: str = "constraints.json") -> dict[str, dict[str, Any]]:
    """The constraints of `problem_type`, validated: {metric: {threshold, operator}}."""
    key = f"{SECTIONS[problem_type]}_constraints"
    others = [k for k in constraints if k.endswith("_constraints") and k != key]
    if key not in constraints:
        held = f" (it holds {', '.join(others)})" if others else ""
        raise ConfigError(f"{source} has no {key}{held}; give the baseline of a "
                          f"{problem_type.autopilot_name} model or --problem-type to match")
    found = constraints[key]
    if not isinstance(found, dict):
        raise ConfigError(f"{source}: {key} must map metric names to "
                          "{threshold, comparison_operator}")
    for name, rule in found.items():
        if not isinstance(rule, dict) or not isinstance(rule.get("threshold"), int | float) \
                or isinstance(rule.get("threshold"), bool):
            raise ConfigError(f"{source}: {key}.{name} needs a numeric threshold")
        if rule.get("comparison_operator") not in OPERATORS:
            raise ConfigError(f"{source}: {key}.{name} has comparison_operator "
                              f"{rule.get('comparison_operator')!r}; use one of "
                              f"{', '.join(OPERATORS)}")
    return found


def violations(statistics: dict[str, Any], constraints: dict[str, dict[str, Any]]
               ) -> list[dict[str, str]]:
    """constraint_violations.json's entries: a metric whose value meets its operator
    against its threshold (recall LessThanThreshold 0.8 is broken by recall 0.7). A
    constrained metric the statistics lack is reported too, as it cannot be checked."""
    _, metrics = metrics_of(statistics)
    found = []
    for name, rule in constraints.items():
        operator, threshold = rule["comparison_operator"], float(rule["threshold"])
        entry = metrics.get(name)
        if not isinstance(entry, dict) or "value" not in entry:
            known = ", ".join(k for k in metrics if k not in ("confusion_matrix",))
            raise ConfigError(f"constraint on unknown metric {name!r}; the metrics are: "
                              f"{known}")
        value = entry["value"]
        if value == NAN:
            continue  # undefined in this window (auc with one class): nothing to compare
        if OPERATORS[operator](float(value), threshold):
            std = entry["standard_deviation"]
            spread = f" +/- {std:.6g}" if isinstance(std, float) else ""
            found.append({"constraint_check_type": operator, "metric_name": name,
                          "description": f"Metric {name} with {float(value):.6g}{spread} was "
                                         f"{operator} '{threshold:.6g}'"})
    return found
