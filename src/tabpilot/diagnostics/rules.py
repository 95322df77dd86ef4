"""Debugger's built-in rules, as pure functions of a candidate's numbers.

Each rule returns SageMaker Debugger's result shape, {"RuleConfigurationName",
"RuleEvaluationStatus": "NoIssuesFound" | "IssuesFound", "StatusDetails"}, the details
giving the numbers and the threshold that decided it; or None when its input cannot
decide it (no validation curve, too few rounds, too few features): a rule that did not
look reports nothing rather than "no issues".

Curves are losses per round (curves.json, diagnostics/files.py); a metric where higher
is better is negated first, so every rule reads "lower is better".

Thresholds, and why:
- Overfit: at the best round, the validation loss exceeds the training loss by more than
  OVERFIT_GAP (5 %) of the validation loss AND that gap is more than OVERFIT_SHARE (half)
  of what training gained from its first round (from the larger of the two losses after
  round 1, the nearer to the constant model's). A gap alone misleads on easy tables
  (training loss near zero) and on pure noise (no gain to speak of); measured against
  the gain, it says how much of what the model learned does not carry to unseen rows.
- Overtraining: more than OVERTRAINING_ROUNDS (100) rounds after the validation best and
  more rounds after it than up to it: early stopping came late, or never. tabpilot's own
  patience (30-300 rounds by learning rate) stays under it unless the best came early.
- LossNotDecreasing: over the first LOSS_ROUNDS (10) rounds the training loss fell by
  less than LOSS_MIN_DECREASE (0.1 %) of its first value: flat or rising.
- ClassImbalance: the largest class has more than IMBALANCE_RATIO (10, Debugger's
  default) times the rows of the smallest in the training labels.
- FeatureImportanceOverweight: the IMPORTANCE_TOP (3) most important raw columns carry
  more than IMPORTANCE_SHARE (80 %, Debugger's defaults) of the importance, among more
  than IMPORTANCE_TOP columns: a column that knows the answer (a leak) looks like this.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

OVERFIT_GAP = 0.05
OVERFIT_SHARE = 0.5
OVERTRAINING_ROUNDS = 100
LOSS_ROUNDS = 10
LOSS_MIN_DECREASE = 0.001
IMBALANCE_RATIO = 10.0
IMPORTANCE_TOP = 3
IMPORTANCE_SHARE = 0.8

RULE_NAMES = ("Overfit", "Overtraining", "LossNotDecreasing", "ClassImbalance",
              "FeatureImportanceOverweight")

Result = dict[str, str]


def _result(name: str, issue: bool, details: str) -> Result:
    return {"RuleConfigurationName": name,
            "RuleEvaluationStatus": "IssuesFound" if issue else "NoIssuesFound",
            "StatusDetails": details}


def _losses(curves: dict[str, Any], key: str) -> np.ndarray:
    values = np.asarray(curves.get(key) or [], dtype=np.float64)
    return -values if curves.get("higher_is_better") else values


def _sign(curves: dict[str, Any]) -> int:
    return -1 if curves.get("higher_is_better") else 1


def _best(curves: dict[str, Any], valid: np.ndarray) -> int:
    """The best round, 1-based: curves.json's, else the lowest validation loss."""
    best = curves.get("best_iteration")
    if best is None or not 1 <= best <= len(valid):
        best = int(np.argmin(valid)) + 1
    return int(best)


def overfit(curves: dict[str, Any], gap: float = OVERFIT_GAP, share: float = OVERFIT_SHARE
            ) -> Result | None:
    train, valid = _losses(curves, "train"), _losses(curves, "validation")
    if len(valid) < 2 or len(train) != len(valid):
        return None
    best = _best(curves, valid)
    # after one round, the larger loss is the nearer to the constant model's: an
    # aggressive first tree has already fitted the training rows' noise
    t, v, start = train[best - 1], valid[best - 1], max(train[0], valid[0])
    metric, sign = curves.get("metric", "loss"), _sign(curves)  # sign: values as recorded
    gained = start - t
    if gained <= 0:
        return _result("Overfit", False, f"training {metric} did not improve on round 1's "
                       f"({sign * start:.5g}) by round {best}: nothing learned to overfit")
    excess = v - t
    rel_gap = excess / max(abs(v), 1e-12)
    lost = excess / gained
    issue = rel_gap > gap and lost > share
    return _result("Overfit", issue, (
        f"at the best round {best}: validation {metric} {sign * v:.5g}, training "
        f"{sign * t:.5g} (gap {rel_gap:.1%} of validation, threshold {gap:.0%}); {lost:.0%} "
        f"of the training gain since round 1 ({sign * start:.5g} -> {sign * t:.5g}) is not "
        f"seen on validation (threshold {share:.0%})"))


def overtraining(curves: dict[str, Any], rounds: int = OVERTRAINING_ROUNDS) -> Result | None:
    valid = _losses(curves, "validation")
    if len(valid) < 2:
        return None
    best = _best(curves, valid)
    after = len(valid) - best
    issue = after > max(rounds, best)
    return _result("Overtraining", issue, (
        f"{after} rounds trained after the validation best at round {best} of {len(valid)} "
        f"(issue above {rounds} rounds and above the rounds up to the best)"))


def loss_not_decreasing(curves: dict[str, Any], rounds: int = LOSS_ROUNDS,
                        min_decrease: float = LOSS_MIN_DECREASE) -> Result | None:
    train = _losses(curves, "train")
    if len(train) < 2:
        return None
    k = min(rounds, len(train))
    first, last = train[0], train[k - 1]
    fall = (first - last) / max(abs(first), 1e-12)
    metric, sign = curves.get("metric", "loss"), _sign(curves)
    return _result("LossNotDecreasing", fall < min_decrease, (
        f"training {metric} {sign * first:.5g} at round 1, {sign * last:.5g} at round {k}: "
        f"improved by {fall:.2%} (threshold {min_decrease:.1%})"))


def class_imbalance(counts: Sequence[int], labels: Sequence[Any] | None = None,
                    ratio: float = IMBALANCE_RATIO) -> Result | None:
    """`counts`: training rows per class (every class the job knows, zeros included)."""
    counts = np.asarray(counts, dtype=np.int64)
    if len(counts) < 2:
        return None
    names = list(labels) if labels is not None and len(labels) == len(counts) \
        else list(range(len(counts)))
    big, small = int(np.argmax(counts)), int(np.argmin(counts))
    found = counts[big] / counts[small] if counts[small] else float("inf")
    return _result("ClassImbalance", found > ratio, (
        f"largest class {names[big]!s} has {counts[big]} training rows, smallest "
        f"{names[small]!s} {counts[small]} ({found:.3g} times, threshold {ratio:g}; "
        f"smallest share {counts[small] / counts.sum():.1%})"))


def feature_importance_overweight(importance: Sequence[dict[str, Any]],
                                  top: int = IMPORTANCE_TOP, share: float = IMPORTANCE_SHARE
                                  ) -> Result | None:
    """`importance`: [{"feature", "value"}] on the raw columns (explanations.json's);
    negative values (a permuted column that helped by chance) count as zero."""
    values = np.array([max(float(f["value"]), 0.0) for f in importance])
    if len(values) <= top or values.sum() <= 0:
        return None
    order = np.argsort(-values, kind="stable")[:top]
    carried = values[order].sum() / values.sum()
    names = ", ".join(str(importance[i]["feature"]) for i in order)
    return _result("FeatureImportanceOverweight", carried > share, (
        f"the top {top} of {len(values)} columns ({names}) carry {carried:.0%} of the "
        f"importance (threshold {share:.0%})"))


def curve_rules(curves: dict[str, Any] | None) -> list[Result]:
    """The rules a candidate's curves decide (none without curves)."""
    if not curves:
        return []
    found = (overfit(curves), overtraining(curves), loss_not_decreasing(curves))
    return [r for r in found if r is not None]
