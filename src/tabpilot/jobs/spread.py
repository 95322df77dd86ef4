"""How far apart two validation scores must be to mean something, for the default
selection's one-standard-error rule (jobs/selection.py).

A faster candidate is handed out instead of the most accurate only when its shortfall is
within the noise of the comparison: one standard error of the difference between the
two scores, measured by a paired bootstrap of the validation rows (both candidates scored
on the same resamples, reports/bootstrap.py, so what they share cancels). With a few
hundred validation rows the error is large and the relative cap (FAST_TOLERANCE) decides;
with tens of thousands it is small, and a candidate 0.4 % worse in AUC is not "as good".

Only the candidates the relative rule would consider are resampled (a few milliseconds
each). What is computed is kept in the job's stats (`shortfall_se`) so that every later
reader of the leaderboard (describe, the CLI, Studio) applies the same rule.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tabpilot.execution.trial import VALIDATION_PREDICTIONS
from tabpilot.reports.bootstrap import resampled_metrics
from tabpilot.reports.candidate import VALIDATION_TARGET
from tabpilot.tasks import ProblemType

ROUNDS = 200


def shortfall_errors(job_dir: Path, board: pd.DataFrame, problem_type: ProblemType,
                     contenders: list[str], thresholds: dict[str, float | None]
                     ) -> dict[str, object] | None:
    """{"against": the most accurate, "errors": {candidate: standard error of its score's
    difference from the most accurate's}} for `contenders`; None when the objective has
    no resampled form or the validation files are missing (the relative rule then
    decides alone). Sample weights are not resampled: the errors are of the unweighted
    scores."""
    if board.empty or not contenders:
        return None
    metric = board.attrs.get("objective_metric")
    best = str(board["candidate"].iloc[0])
    target = job_dir / VALIDATION_TARGET
    if not target.is_file():
        return None
    y = np.load(target, allow_pickle=False)

    def values(name: str) -> np.ndarray | None:
        path = job_dir / "candidates" / name / VALIDATION_PREDICTIONS
        if not path.is_file():
            return None
        pred = np.load(path, allow_pickle=False)
        if len(pred) != len(y):
            return None
        return resampled(problem_type, str(metric), y, pred, thresholds.get(name))

    base = values(best)
    if base is None:
        return None
    errors: dict[str, float] = {}
    for name in contenders:
        error = difference_error(base, values(name))
        if error is not None:
            errors[name] = error
    return {"against": best, "errors": errors}


def resampled(problem_type: ProblemType, metric: str, y: np.ndarray, pred: np.ndarray,
              threshold: float | None) -> np.ndarray | None:
    """`metric` of validation predictions `pred` on the ROUNDS resamples (the same ones for
    every candidate: paired); None when the metric has no resampled form."""
    scores = resampled_metrics(problem_type, y, pred.astype(np.float64), threshold, ROUNDS)
    return scores.get(metric)


def difference_error(base: np.ndarray | None, other: np.ndarray | None) -> float | None:
    """The standard error of the difference of two candidates' scores, from their
    `resampled` values; None without them, or when most resamples leave it undefined."""
    if base is None or other is None:
        return None
    diff = base - other
    diff = diff[np.isfinite(diff)]
    return float(np.std(diff, ddof=1)) if len(diff) >= ROUNDS // 2 else None
