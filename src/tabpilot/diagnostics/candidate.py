"""When a candidate's rules run, and on what.

As the trial packages the candidate (diagnose_trial): its curves are written and the
curve rules and ClassImbalance evaluated, a few list operations on numbers the fit
already produced. When the reports compute its importance (diagnose_importance, called
by reports/candidate.py): FeatureImportanceOverweight, on that importance, since the
trial computes none. A candidate whose reports were not written has no result for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tabpilot.diagnostics.files import CURVES, read_rules, write_curves, write_rules
from tabpilot.diagnostics.rules import (
    Result,
    class_imbalance,
    curve_rules,
    feature_importance_overweight,
)


def take_curves(infos: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Move the fits' curves out of their infos (which the store and metadata.json keep)
    and return the first fit's: under k-fold, fold 1's, one fit's rounds as trained."""
    found = [info.pop("curves", None) for info in infos]
    return next((c for c in found if c), None)


def diagnose_trial(folder: Path, curves: dict[str, Any] | None,
                   labels: np.ndarray | None = None, n_classes: int = 0,
                   classes: list[Any] | None = None) -> list[Result]:
    """curves.json (when the family recorded curves) and rules.json in the candidate's
    folder. `labels`: the training rows' class codes 0..n_classes-1 (classification)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if curves:
        write_curves(folder, curves)
    else:  # a resumed or rerun trial of a family without curves: none from before
        (folder / CURVES).unlink(missing_ok=True)
    results = curve_rules(curves)
    if labels is not None and n_classes >= 2:
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes)
        imbalance = class_imbalance(counts, classes)
        if imbalance is not None:
            results.append(imbalance)
    write_rules(folder, results, merge=False)  # a rerun decides every rule again
    return results


def diagnose_importance(folder: Path, importance: list[dict[str, Any]]) -> list[Result]:
    """Add FeatureImportanceOverweight to rules.json; every result of the candidate."""
    found = feature_importance_overweight(importance)
    if found is None:
        return read_rules(folder)
    write_rules(folder, [found])
    return read_rules(folder)
