"""A candidate's reports, from what its job saved on disk: explanations.json /
explanations.html (Explainability: raw-column importance, SHAP summary, dependence and
partial dependence) and insights.json / insights.html (ModelInsights). The two pages link
to each other and are both drawn by write_insights.

A job keeps the validation targets (`validation_target.npy`), a sample of validation rows
(`validation_sample.parquet` and its targets, `validation_sample_target.npy`) and each
candidate's validation predictions, so reports can be written at any time after the trial,
for any kept candidate. None of them is a pickle: reading a job folder runs no code.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.artifacts import load
from tabpilot.artifacts.package import METADATA
from tabpilot.diagnostics.candidate import diagnose_importance
from tabpilot.diagnostics.files import read_curves, read_rules
from tabpilot.errors import NotFoundError
from tabpilot.execution.trial import VALIDATION_PREDICTIONS
from tabpilot.metrics import METRICS
from tabpilot.reports.datafiles import read_frame, write_frame
from tabpilot.reports.explain import explanation
from tabpilot.reports.html import EXPLANATIONS_PAGE, INSIGHTS_PAGE, render, render_explanations
from tabpilot.reports.insights import model_insights
from tabpilot.tasks import ProblemType
from tabpilot.text.explain import text_column, top_words

log = logging.getLogger("tabpilot.reports.candidate")

VALIDATION_TARGET = "validation_target.npy"
VALIDATION_SAMPLE = "validation_sample"  # .parquet (.csv where Parquet cannot hold it)
VALIDATION_SAMPLE_TARGET = "validation_sample_target.npy"
OLD_SAMPLE = "validation_sample.pkl"  # tabpilot before 0.3; never unpickled
SAMPLE_ROWS = 1000
EXPLANATIONS = "explanations.json"  # the candidate's Explainability artifact
EXPLANATIONS_HTML = EXPLANATIONS_PAGE  # its page: SHAP summary, dependence, PD / ICE
INSIGHTS_JSON, INSIGHTS_HTML = "insights.json", INSIGHTS_PAGE  # its ModelInsights


def save_validation_data(job_dir: Path, X: pd.DataFrame, y: np.ndarray,
                         valid_rows: np.ndarray, seed: int = 0) -> None:
    """What reports need later: every validation target and a sample of validation rows."""
    np.save(job_dir / VALIDATION_TARGET, y[valid_rows])
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(valid_rows), min(SAMPLE_ROWS, len(valid_rows)),
                              replace=False))
    sample = X.iloc[valid_rows[pick]].reset_index(drop=True)
    np.save(job_dir / VALIDATION_SAMPLE_TARGET, np.asarray(y[valid_rows[pick]]),
            allow_pickle=False)
    name, note = write_frame(sample, job_dir, VALIDATION_SAMPLE)
    for other in (f"{VALIDATION_SAMPLE}.parquet", f"{VALIDATION_SAMPLE}.csv", OLD_SAMPLE):
        if other != name:  # an earlier run's (a resumed job): not to be read for this one
            (job_dir / other).unlink(missing_ok=True)
    if note:
        log.warning("the validation sample for explanations: %s", note)


def load_validation_sample(job_dir: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """The sample of validation rows and their targets that `save_validation_data` kept."""
    for name in (f"{VALIDATION_SAMPLE}.parquet", f"{VALIDATION_SAMPLE}.csv"):
        if (job_dir / name).is_file():
            y = np.load(job_dir / VALIDATION_SAMPLE_TARGET, allow_pickle=False)
            return read_frame(job_dir / name), y
    old = " as a pickle, which tabpilot does not load" if (job_dir / OLD_SAMPLE).is_file() else ""
    raise NotFoundError(f"job {job_dir.name!r} kept no sample of validation rows{old} "
                        f"({VALIDATION_SAMPLE}.parquet); run the job again with `tabpilot run` "
                        "to report on its candidates")


def _candidate_dir(job_dir: Path, candidate: str) -> Path:
    cand_dir = job_dir / "candidates" / candidate
    if not (cand_dir / "model").is_dir() or not (cand_dir / VALIDATION_PREDICTIONS).is_file():
        raise NotFoundError(f"candidate {candidate!r} has no packaged model and validation "
                            "predictions to report on")
    return cand_dir


def _write(path: Path, text: str) -> None:
    """Replace the file whole: a reader never sees half a report."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _json_number(v: Any) -> Any:
    return float(v) if isinstance(v, np.floating | np.integer) else str(v)


def write_explanations(job_dir: Path, candidate: str, metric_name: str,
                       max_rows: int = SAMPLE_ROWS, seed: int = 0,
                       deadline: float | None = None) -> Path:
    """explanations.json: each raw column's importance, on up to `max_rows` validation rows
    (TimeoutError, and nothing written, when `deadline` passes first), the top columns'
    SHAP values and their partial dependence (see reports.explain.explanation)."""
    started = time.time()
    cand_dir = _candidate_dir(job_dir, candidate)
    model = load(cand_dir / "model")
    predictor = model.predictor
    X, y = load_validation_sample(job_dir)
    if len(X) > max_rows:  # a seeded subset keeps the report within its time share
        pick = np.sort(np.random.default_rng(seed).choice(len(X), max_rows, replace=False))
        X, y = X.iloc[pick].reset_index(drop=True), y[pick]
    found = explanation(predictor, X, y, METRICS[metric_name], predictor.threshold,
                        deadline=deadline)
    column = text_column(model.metadata)
    if column is not None:  # a text model: the words that weigh most per class
        found["text"] = top_words(predictor, X, column, seed=seed, deadline=deadline)
    path = cand_dir / EXPLANATIONS
    document = {"candidate": candidate, "algorithm": model.metadata.get("algorithm", ""),
                "problem_type": predictor.problem_type.value, "rows": len(X), **found}
    document["seconds"] = round(time.time() - started, 3)
    _write(path, json.dumps(document, default=_json_number))
    # the one rule that needs the importance runs where the importance is computed
    diagnose_importance(cand_dir, found["feature_importance"]["importance"])
    # its page is drawn by write_insights: an earlier run's would not match these numbers
    (cand_dir / EXPLANATIONS_HTML).unlink(missing_ok=True)
    return path


def write_insights(job_dir: Path, candidate: str) -> Path:
    """insights.json and insights.html from the validation predictions (no prediction),
    then explanations.html from explanations.json when it was written.

    Every chart of a candidate is drawn here, none in write_explanations: the explanations'
    time share (jobs/reporting.py) goes to explaining, and a job short of time still
    has each explained candidate's numbers. The feature importance comes from
    explanations.json when it was written.
    """
    started = time.time()
    cand_dir = _candidate_dir(job_dir, candidate)
    meta = json.loads((cand_dir / "model" / METADATA).read_text())
    y = np.load(job_dir / VALIDATION_TARGET)
    pred = np.load(cand_dir / VALIDATION_PREDICTIONS).astype(np.float64)
    insights = model_insights(ProblemType(meta["problem_type"]), y, pred, meta.get("classes"),
                              meta.get("threshold"))
    explanations = cand_dir / EXPLANATIONS
    explained = json.loads(explanations.read_text()) if explanations.is_file() else {}
    importance = explained.get("feature_importance",
                               {"method": "not computed", "importance": []})
    algorithm = meta.get("algorithm", "")
    curves, rules = read_curves(cand_dir), read_rules(cand_dir)
    document = {"candidate": candidate, "algorithm": algorithm, **insights,
                "feature_importance": importance, "debug_rules": rules,
                "seconds": round(time.time() - started, 3)}
    html_path = cand_dir / INSIGHTS_HTML
    _write(cand_dir / INSIGHTS_JSON, json.dumps(document, indent=1, default=float))
    _write(html_path, render(candidate, algorithm, insights, importance,
                             explanations_page=bool(explained), curves=curves, rules=rules,
                             words=explained.get("text")))
    if explained:
        _write(cand_dir / EXPLANATIONS_HTML, render_explanations(candidate, explained))
    return html_path


def write_candidate_report(job_dir: Path, candidate: str, metric_name: str) -> dict[str, Any]:
    """Explanations, then insights, for one candidate; returns their locations."""
    started = time.time()
    explanations = write_explanations(job_dir, candidate, metric_name)
    insights = write_insights(job_dir, candidate)
    return {"Explainability": str(explanations), "ModelInsights": str(insights),
            "seconds": time.time() - started}
