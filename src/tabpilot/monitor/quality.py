"""Model-quality monitoring: an endpoint's captured predictions joined with ground truth
by inference id, measured (`quality_metrics.py`) and checked against a baseline's
constraints; and the baseline itself, suggested from labelled predictions.

Which field of a captured response is the prediction follows SageMaker's
ModelQualityJobDefinition: `inference_attribute` names the predicted label (a JSON key,
or a CSV column's index), `probability_attribute` the positive class's probability and
`probability_threshold` turns that probability into a label (positive from the
threshold on) when no label attribute is given. Left out, tabpilot's own responses are
read as `serving/codec.py` writes them: `predicted_label` (CSV: column 0) is the label;
for AUC the positive class's probability comes from `probabilities` + `labels`, else
from `probability` (CSV: column 1), which tabpilot gives for the predicted label, so
1 - p where the predicted label is the negative one. A `probability_attribute` of
`probability` on such responses (a schedule written for another endpoint) is read the same
way.

A captured row without ground truth, and a label whose id matches no captured row of
the window, are counted, never guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabpilot import names
from tabpilot.errors import ConfigError, DataError, NotFoundError, shown
from tabpilot.monitor import COMPLETED, CONSTRAINTS, JOB_FOLDER, STATISTICS, VIOLATIONS, WITH_VIOLATIONS
from tabpilot.monitor.checks import Execution
from tabpilot.monitor.execution import Outcome
from tabpilot.monitor.groundtruth import ground_truth_folder, label_text, read_ground_truth
from tabpilot.monitor.quality_metrics import (
    check_constraints,
    metrics_of,
    quality_statistics,
    suggest_constraints,
    violations,
)
from tabpilot.tasks import ProblemType

QUALITY_FOLDER = "model-quality"  # a job's quality baseline: <job dir>/monitoring/model-quality


@dataclass
class Pairs:
    """Labelled predictions, ready to measure."""
    problem_type: ProblemType
    truth: list[Any]
    predicted: list[Any]
    score: list[float] | None = None  # P(positive), binary only
    positive: str | None = None
    classes: list[str] = field(default_factory=list)  # tabpilot's labels order, if known


def measure(pairs: Pairs, rounds: int | None = None) -> dict[str, Any]:
    """statistics.json of `pairs`."""
    extra = {} if rounds is None else {"rounds": rounds}
    if pairs.problem_type is ProblemType.REGRESSION:
        truth = _floats(pairs.truth, "ground-truth label")
        predicted = _floats(pairs.predicted, "prediction")
        return quality_statistics(pairs.problem_type, truth, predicted, **extra)
    truth_text = [label_text(v) for v in pairs.truth]
    predicted_text = [label_text(v) for v in pairs.predicted]
    if pairs.problem_type is ProblemType.MULTICLASS:
        labels = sorted(set(truth_text) | set(predicted_text), key=_label_order)
        index = {label: i for i, label in enumerate(labels)}
        return quality_statistics(pairs.problem_type,
                                  np.array([index[v] for v in truth_text], dtype=np.int64),
                                  np.array([index[v] for v in predicted_text], dtype=np.int64),
                                  labels=labels, **extra)
    positive = pairs.positive or positive_label(truth_text + predicted_text, pairs.classes)
    seen = sorted(set(truth_text) | set(predicted_text) | {positive}, key=_label_order)
    if len(seen) > 2:
        raise DataError(f"a binary problem, but {len(seen)} labels are seen "
                        f"({shown(', '.join(seen))}); use --problem-type multiclass")
    negative = next((v for v in seen if v != positive), "not " + positive)
    score = None if pairs.score is None else np.asarray(pairs.score, dtype=float)
    if score is not None and not np.isfinite(score).all():
        score = None  # a probability missing from some responses: no auc rather than a wrong one
    return quality_statistics(pairs.problem_type, np.array([v == positive for v in truth_text]),
                              np.array([v == positive for v in predicted_text]), score,
                              labels=[negative, positive], **extra)


def _label_order(label: str) -> tuple[int, float, str]:
    try:
        return 0, float(label), label
    except ValueError:
        return 1, 0.0, label


def positive_label(labels: list[str], classes: list[str]) -> str:
    """The positive class of a binary problem: 1 of {0, 1}, true of {false, true},
    else the model's second class (tabpilot's positive), else the second in order."""
    seen = set(labels)
    for negative, positive in (("0", "1"), ("false", "true")):
        if seen <= {negative, positive}:
            return positive
    if len(classes) == 2:
        return label_text(classes[1])
    ordered = sorted(seen, key=_label_order)
    return ordered[1] if len(ordered) > 1 else ordered[0]


def _floats(values: list[Any], what: str) -> np.ndarray:
    out = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(out))
    if len(bad):
        raise DataError(f"a regression needs numbers, but {len(bad)} {what}(s) are not, "
                        f"e.g. {shown(values[bad[0]])}")
    return out


# -- captured predictions ------------------------------------------------------------------
def select_predictions(answers: pd.DataFrame, problem_type: ProblemType,
                       inference_attribute: str | None = None,
                       probability_attribute: str | None = None,
                       probability_threshold: float | None = None
                       ) -> tuple[pd.Series, pd.Series | None, list[str]]:
    """(predicted labels or values, P(positive) or None, the model's classes if the
    responses list them) from the captured responses' fields."""
    def column(name: str, option: str) -> pd.Series:
        if name not in answers.columns:
            held = [c for c in answers.columns if c not in ("inference_id", "inference_time")]
            raise ConfigError(f"{option} {name!r} is not in the captured responses; they hold "
                              f"{shown(', '.join(held))} (a CSV response's columns are 0, 1, "
                              "...)")
        return answers[name]

    classes = _listed_classes(answers)
    if problem_type is not ProblemType.BINARY:
        labels = column(inference_attribute, "--inference-attribute") if inference_attribute \
            else _coalesce(answers, "predicted_label", "0")
        return labels, None, classes
    if probability_attribute == "probability" and "predicted_label" in answers.columns \
            and inference_attribute in (None, "predicted_label"):
        # tabpilot's own `probability` is the predicted label's, not P(positive): read the
        # responses as served rather than take it for SageMaker's ProbabilityAttribute
        probability_attribute = None
    if probability_attribute is not None:
        score = _probabilities(column(probability_attribute, "--probability-attribute"))
        if inference_attribute is None:
            if probability_threshold is None:
                probability_threshold = 0.5
            labels = pd.Series(np.where(score >= probability_threshold, "1", "0"),
                               index=answers.index)
            return labels, pd.Series(score, index=answers.index), ["0", "1"]
        return column(inference_attribute, "--inference-attribute"), \
            pd.Series(score, index=answers.index), classes
    if inference_attribute and inference_attribute not in ("predicted_label", "0"):
        return column(inference_attribute, "--inference-attribute"), None, classes
    labels = column(inference_attribute, "--inference-attribute") if inference_attribute \
        else _coalesce(answers, "predicted_label", "0")
    return labels, _default_score(answers, labels, classes), classes


def _coalesce(answers: pd.DataFrame, key: str, position: str) -> pd.Series:
    """A JSON response's `key`, else a CSV response's column at `position` (one window may
    hold both, as each request chooses its Accept)."""
    found = [answers[c] for c in (key, position) if c in answers.columns]
    if not found:
        raise ConfigError(f"the captured responses hold no {key!r} (JSON) or column "
                          f"{position} (CSV); give --inference-attribute")
    return found[0] if len(found) == 1 else found[0].where(found[0].notna(), found[1])


def _probabilities(values: pd.Series) -> np.ndarray:
    score = pd.to_numeric(values, errors="coerce").to_numpy(float)
    if not np.isfinite(score).all() or (score < 0).any() or (score > 1).any():
        raise DataError("the probability attribute holds values that are not probabilities "
                        f"in [0, 1], e.g. {shown(values[~((score >= 0) & (score <= 1))].iloc[0])}")
    return score


def _listed_classes(answers: pd.DataFrame) -> list[str]:
    if "labels" not in answers.columns or answers.empty:
        return []
    first = answers["labels"].iloc[0]
    first = json.loads(first) if isinstance(first, str) else first
    return [label_text(v) for v in first] if isinstance(first, list) else []


def _default_score(answers: pd.DataFrame, labels: pd.Series, classes: list[str]
                   ) -> pd.Series | None:
    """P(positive) from tabpilot's own response fields, if they hold one."""
    if "probabilities" in answers.columns and len(classes) == 2:
        rows = answers["probabilities"].map(lambda v: json.loads(v) if isinstance(v, str) else v)
        try:
            return pd.Series([float(r[1]) for r in rows], index=answers.index)
        except (TypeError, IndexError, ValueError):
            return None
    if "probability" not in answers.columns and "1" not in answers.columns:
        return None
    p = pd.to_numeric(_coalesce(answers, "probability", "1"), errors="coerce").to_numpy(float)
    texts = [label_text(v) for v in labels]
    positive = positive_label(texts, classes)
    return pd.Series(np.where(np.array(texts) == positive, p, 1 - p), index=answers.index)


# -- an execution ---------------------------------------------------------------------------
def run_model_quality(endpoint: str, *, workspace: Path | None, problem_type: str,
                      ground_truth: Path | None = None,
                      baseline_constraints: Path | None = None,
                      start: datetime | None = None, end: datetime | None = None,
                      now: datetime, output: Path | None = None,
                      inference_attribute: str | None = None,
                      probability_attribute: str | None = None,
                      probability_threshold: float | None = None,
                      positive_label: str | None = None) -> Outcome:
    """Measure the endpoint's predictions captured in [start, end) against their ground
    truth (default folder `<workspace>/ground-truth/<endpoint>`, read from `start` on:
    labels come after predictions); check `baseline_constraints` (a constraints.json, or
    a folder holding one); write statistics.json and constraint_violations.json to
    `output` (default `<workspace>/monitoring/<endpoint>/model-quality/<now>`)."""
    from tabpilot.config import workspace_path
    from tabpilot.monitor.capture import capture_folder, read_predictions

    ptype = ProblemType.parse(problem_type)
    constraints = None
    if baseline_constraints is not None:
        path, loaded = load_constraints(baseline_constraints)
        constraints = check_constraints(loaded, ptype, str(path))
    answers, requests = read_predictions(capture_folder(endpoint, workspace), start, end)
    labels = read_ground_truth(ground_truth or ground_truth_folder(endpoint, workspace), start)
    window: dict[str, Any] = {"Source": endpoint,
                              "Start": start.isoformat() if start else None,
                              "End": end.isoformat() if end else None, "Requests": requests,
                              "Predictions": len(answers), "GroundTruth": len(labels)}
    if answers.empty:
        raise DataError(f"no captured predictions of endpoint {endpoint!r} between "
                        f"{window['Start'] or 'the first'} and {window['End'] or 'now'}; "
                        "widen --start/--end")
    predicted, score, classes = select_predictions(
        answers, ptype, inference_attribute, probability_attribute, probability_threshold)
    ids = answers["inference_id"].astype(str)
    matched = ids.isin(labels.keys()).to_numpy()
    window.update(Labelled=int(matched.sum()), UnmatchedPredictions=int((~matched).sum()),
                  UnmatchedGroundTruth=len(set(labels) - set(ids)))
    if not matched.any():
        raise DataError(f"none of the {len(answers)} captured predictions of endpoint "
                        f"{endpoint!r} in the window has ground truth ({len(labels)} labels "
                        "read); `tabpilot monitor ground-truth` writes them")
    pairs = Pairs(ptype, [labels[i] for i in ids[matched]], list(predicted[matched]),
                  None if score is None else list(score[matched]), positive_label, classes)
    statistics = measure(pairs)
    statistics["dataset"]["evaluation_time"] = now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    found = violations(statistics, constraints) if constraints is not None else []
    target = output or workspace_path(workspace) / "monitoring" / endpoint / QUALITY_FOLDER \
        / now.strftime("%Y%m%dT%H%M%SZ")
    _write(target, {STATISTICS: statistics, VIOLATIONS: {"violations": found}})
    execution = Execution(WITH_VIOLATIONS if found else COMPLETED, found, statistics)
    return Outcome(execution, target, window)


def _write(folder: Path, files: dict[str, Any]) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            part = folder / f"{name}.part"
            part.write_text(json.dumps(content, indent=1))
            part.replace(folder / name)
    except OSError as exc:
        raise DataError(f"cannot write to {folder}: {exc.strerror or exc}; give another "
                        "-o folder") from None


def load_constraints(given: Path) -> tuple[Path, dict[str, Any]]:
    path = given / CONSTRAINTS if given.is_dir() else given
    fix = "write one with `tabpilot monitor quality-baseline JOB|TABLE`"
    if not path.is_file():
        raise NotFoundError(f"no model-quality constraints at {path}; {fix}")
    try:
        loaded = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not valid JSON ({exc}); {fix}") from None
    if not isinstance(loaded, dict):
        raise DataError(f"{path} is not a constraints object; {fix}")
    return path, loaded


# -- baselines ------------------------------------------------------------------------------
def write_quality_baseline(pairs: Pairs, folder: Path, margin: float = 2.0
                           ) -> dict[str, Any]:
    """statistics.json and the suggested constraints.json of labelled predictions."""
    if not pairs.truth:
        raise DataError("no labelled predictions to suggest a baseline from")
    statistics = measure(pairs)
    constraints = suggest_constraints(statistics, margin)
    _write(folder, {STATISTICS: statistics, CONSTRAINTS: constraints})
    return {"Baseline": str(folder), "ProblemType": pairs.problem_type.autopilot_name,
            "Items": len(pairs.truth), "Constraints": next(
                v for k, v in constraints.items() if k.endswith("_constraints"))}


def job_pairs(job: str, workspace: Path | None) -> tuple[Pairs, Path]:
    """The best candidate's held-out predictions (out-of-fold, or on the validation part)
    and their targets; (pairs, the job's folder)."""
    from tabpilot.config import workspace_path
    from tabpilot.execution.trial import VALIDATION_PREDICTIONS
    from tabpilot.metrics import labels_from_proba
    from tabpilot.monitor.baseline import job_folder
    from tabpilot.reports.candidate import VALIDATION_TARGET
    from tabpilot.store import Store

    job_dir = job_folder(job, workspace)
    row = Store.for_workspace(workspace_path(workspace), create=False).get_job(job)
    if not row.best_candidate:
        raise NotFoundError(f"job {job!r} has no best candidate yet; wait for it to finish")
    cand = job_dir / "candidates" / row.best_candidate
    paths = (cand / VALIDATION_PREDICTIONS, job_dir / VALIDATION_TARGET, cand / "model" /
             "metadata.json")
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise NotFoundError(f"job {job!r}'s best candidate {row.best_candidate} kept no "
                            f"{missing[0]}; give a table of labels and predictions instead")
    pred = np.load(paths[0]).astype(np.float64)
    y = np.load(paths[1], allow_pickle=False)
    meta = json.loads(paths[2].read_text())
    ptype = ProblemType(meta["problem_type"])
    if ptype is ProblemType.REGRESSION:
        return Pairs(ptype, list(y), list(pred)), job_dir
    classes = [label_text(c) for c in meta["classes"]]
    chosen = labels_from_proba(pred, meta.get("threshold"))
    truth = [classes[int(i)] for i in y]
    predicted = [classes[int(i)] for i in chosen]
    score = list(pred[:, 1]) if ptype is ProblemType.BINARY else None
    return Pairs(ptype, truth, predicted, score, classes[-1] if len(classes) == 2 else None,
                 classes), job_dir


def table_pairs(source: str, label_column: str, prediction_column: str,
                problem_type: str | None, probability_column: str | None = None,
                positive: str | None = None) -> Pairs:
    from tabpilot.data.read import read_table
    from tabpilot.tasks import infer_problem_type

    df = read_table(source, copy=False)
    for option, column in (("--label-column", label_column),
                           ("--prediction-column", prediction_column),
                           ("--probability-column", probability_column)):
        if column is not None and column not in df.columns:
            raise DataError(f"{option} {column!r} is not a column of {source}; its columns: "
                            f"{shown(', '.join(map(str, df.columns)))}")
    df = df.dropna(subset=[label_column, prediction_column])
    if df.empty:
        raise DataError(f"{source} has no row with both a label and a prediction")
    ptype = ProblemType.parse(problem_type) if problem_type else \
        infer_problem_type(df[label_column])
    score = None
    if probability_column is not None and ptype is ProblemType.BINARY:
        score = list(_probabilities(df[probability_column]))
    return Pairs(ptype, list(df[label_column]), list(df[prediction_column]), score, positive)


def quality_baseline(source: str, output: Path | None, workspace: Path | None, *,
                     label_column: str | None = None, prediction_column: str | None = None,
                     probability_column: str | None = None, problem_type: str | None = None,
                     positive: str | None = None, margin: float = 2.0) -> dict[str, Any]:
    """`tabpilot monitor quality-baseline`: a job's (default folder
    `<job dir>/monitoring/model-quality`) or a table's (`output` needed)."""
    from tabpilot.monitor.baseline import is_table

    if margin < 0:
        raise ConfigError(f"--margin is a number of standard deviations >= 0, got {margin}")
    if is_table(source):
        if label_column is None or prediction_column is None:
            raise ConfigError("a table's baseline needs --label-column and --prediction-column")
        if output is None:
            raise ConfigError("give the baseline folder of a table with -o DIR")
        pairs = table_pairs(source, label_column, prediction_column, problem_type,
                            probability_column, positive)
        return write_quality_baseline(pairs, output, margin)
    if not names.is_valid(source, "job") or Path(source).exists():
        raise DataError(f"{source} is neither a table file nor a job name; give the path "
                        "of a CSV, Parquet or JSON-lines file, or a job of the workspace")
    pairs, job_dir = job_pairs(source, workspace)
    return write_quality_baseline(pairs, output or job_dir / JOB_FOLDER / QUALITY_FOLDER,
                                  margin)


def resolve_constraints(given: str, workspace: Path | None) -> Path:
    """A constraints.json, a folder holding one, or a job (its quality baseline, suggested
    from its best candidate on first use)."""
    path = Path(given)
    if path.exists() or not names.is_valid(given, "job"):
        return path
    from tabpilot.monitor.baseline import job_folder

    folder = job_folder(given, workspace) / JOB_FOLDER / QUALITY_FOLDER
    if not (folder / CONSTRAINTS).is_file():
        quality_baseline(given, None, workspace)
    return folder


def baseline_problem_type(constraints: Path) -> str:
    """The problem type a constraints.json is written for."""
    from tabpilot.monitor.quality_metrics import SECTIONS

    path, loaded = load_constraints(constraints)
    for problem_type in ProblemType:
        if f"{SECTIONS[problem_type]}_constraints" in loaded:
            return problem_type.value
    raise ConfigError(f"{path} holds no model-quality constraints; give --problem-type")


__all__ = ["Pairs", "measure", "metrics_of", "quality_baseline", "run_model_quality"]
