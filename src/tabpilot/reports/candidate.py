"""insights.json and insights.html for a candidate, from what its job saved on disk.

A job keeps the validation targets (`validation_target.npy`), a sample of validation rows
(`validation_sample.pkl`) and each candidate's validation predictions, so reports can be
written at any time after the trial, for any kept candidate.
"""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.artifacts import load
from tabpilot.errors import NotFoundError
from tabpilot.execution.trial import VALIDATION_PREDICTIONS
from tabpilot.metrics import METRICS
from tabpilot.reports.explain import global_importance
from tabpilot.reports.html import render
from tabpilot.reports.insights import model_insights
from tabpilot.tasks import ProblemType

VALIDATION_TARGET = "validation_target.npy"
VALIDATION_SAMPLE = "validation_sample.pkl"
SAMPLE_ROWS = 1000


def save_validation_data(job_dir: Path, X: pd.DataFrame, y: np.ndarray,
                         valid_rows: np.ndarray, seed: int = 0) -> None:
    """What reports need later: every validation target and a sample of validation rows."""
    np.save(job_dir / VALIDATION_TARGET, y[valid_rows])
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(valid_rows), min(SAMPLE_ROWS, len(valid_rows)),
                              replace=False))
    sample = X.iloc[valid_rows[pick]].reset_index(drop=True)
    with open(job_dir / VALIDATION_SAMPLE, "wb") as f:
        pickle.dump({"X": sample, "y": y[valid_rows[pick]]}, f)


def write_candidate_report(job_dir: Path, candidate: str, metric_name: str) -> dict[str, Any]:
    """Write insights.json and insights.html beside the candidate's model; return locations."""
    started = time.time()
    cand_dir = job_dir / "candidates" / candidate
    preds = cand_dir / VALIDATION_PREDICTIONS
    if not (cand_dir / "model").is_dir() or not preds.is_file():
        raise NotFoundError(f"candidate {candidate!r} has no packaged model and validation "
                            "predictions to report on")
    model = load(cand_dir / "model")
    predictor = model.predictor
    metric = METRICS[metric_name]
    y = np.load(job_dir / VALIDATION_TARGET)
    pred = np.load(preds).astype(np.float64)
    insights = model_insights(ProblemType(predictor.problem_type), y, pred, predictor.classes,
                              predictor.threshold)
    with open(job_dir / VALIDATION_SAMPLE, "rb") as f:
        sample = pickle.load(f)
    importance = global_importance(predictor, sample["X"], sample["y"], metric,
                                   predictor.threshold)
    algorithm = model.metadata.get("algorithm", "")
    document = {"candidate": candidate, "algorithm": algorithm, **insights,
                "feature_importance": importance,
                "seconds": round(time.time() - started, 3)}
    json_path, html_path = cand_dir / "insights.json", cand_dir / "insights.html"
    json_path.write_text(json.dumps(document, indent=1, default=float))
    html_path.write_text(render(candidate, algorithm, insights, importance))
    return {"ModelInsights": str(html_path), "Explainability": str(json_path),
            "seconds": time.time() - started}
