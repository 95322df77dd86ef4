"""One trial: fit a candidate pipeline on each fold, score it, package it, time it.

Under k-fold the packaged model is the bag of the k fold models, averaged: on small
tables it predicts better than one model refit on every row, at k times the compute.

A refit trial (`task.refit_of` set) retrains an already scored candidate on every
training row (train + holdout) and keeps the scores of the candidate it refits.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tabpilot.artifacts import package
from tabpilot.artifacts.latency import measure
from tabpilot.artifacts.predictor import Predictor
from tabpilot.data.split import subsample
from tabpilot.execution.base import TrialContext, TrialResult, TrialTask
from tabpilot.features import build_encoder
from tabpilot.metrics import score, score_all, tune_threshold
from tabpilot.models import FitData, ModelFamily, get_family

VALIDATION_PREDICTIONS = "validation_predictions.npy"
PACKAGING_SECONDS = 1.0  # kept free before the soft deadline for saving and timing the model
COMPILE_CHECK_ROWS = 500  # validation rows on which the compiled path must match the Python one
COMPILE_SECONDS = 1.0  # what the compiled path may add to a trial that used all its time

FitDataFn = Callable[[np.ndarray, "np.ndarray | None", float], FitData]


def run_trial(ctx: TrialContext, task: TrialTask) -> TrialResult:
    warnings.filterwarnings("ignore")
    started = time.time()
    family = get_family(task.family)
    fit_deadline = task.soft_deadline - PACKAGING_SECONDS
    n_classes = len(ctx.classes) if ctx.classes else 0
    rows = subsample(ctx.split.training_rows(include_holdout=task.refit_of is not None),
                     task.train_rows, ctx.seed)
    folds = [(subsample(tr, task.train_rows, ctx.seed + i), va)
             for i, (tr, va) in enumerate(ctx.split.folds)]
    encoder = build_encoder(ctx.schema, family.style).fit(ctx.X.iloc[rows])
    # encode only the rows this trial touches: a subsample's trial stays small in memory
    needed = np.unique(np.concatenate([rows, *[np.concatenate(f) for f in folds]]))
    at = np.full(len(ctx.y), -1, dtype=np.int64)
    at[needed] = np.arange(len(needed))
    encoded = encoder.transform(ctx.X if len(needed) == len(ctx.y) else ctx.X.iloc[needed])
    cats = encoder.categorical_indices_ if family.style == "native" else []

    def fit_data(fit_rows: np.ndarray, valid: np.ndarray | None, deadline: float) -> FitData:
        return FitData(
            X=encoded[at[fit_rows]], y=ctx.y[fit_rows], problem_type=ctx.problem_type,
            n_classes=n_classes, categorical_indices=cats,
            weights=None if ctx.weights is None else ctx.weights[fit_rows],
            X_valid=None if valid is None else encoded[at[valid]],
            y_valid=None if valid is None else ctx.y[valid],
            deadline=deadline, n_threads=ctx.n_threads, seed=ctx.seed)

    if task.refit_of is not None:
        parent = task.refit_of
        params = family.refit_params(dict(task.params), parent["infos"])
        fit_started = time.time()
        data = fit_data(rows, None, fit_deadline)
        estimators = [family.fit(params, data)]
        if data.info.get("stopped_by_deadline"):
            raise TimeoutError("the refit on all rows ran out of time; the model trained on "
                               "the training part stays")
        refit_seconds = time.time() - fit_started
        infos = [{"refit_of": parent["candidate"], "n_estimators": params.get("n_estimators"),
                  "seconds": refit_seconds}]
        scores = (parent["objective"], parent["metrics"], parent["threshold"])
    else:
        estimators, infos, scores, valid_pred = _fit_folds(
            ctx, task, family, lambda r: encoded[at[r]], folds, fit_data, fit_deadline, n_classes)
        # kept beside the model for ensemble selection (rows in the split's validation order)
        out_dir = Path(task.output_dir).parent
        out_dir.mkdir(parents=True, exist_ok=True)
        np.save(out_dir / VALIDATION_PREDICTIONS, valid_pred.astype(np.float32))
    objective, metrics, threshold = scores
    fit_seconds = time.time() - started  # preprocessing, folds, scoring and any refit
    predictor = Predictor(encoder, family.name, estimators, ctx.problem_type,
                          ctx.schema.features, ctx.classes, threshold)
    out = Path(task.output_dir)
    # the compiled path is checked on validation rows; it may take the trial up to
    # COMPILE_SECONDS past its soft deadline, never near the hard one
    check_rows = ctx.split.validation_rows()[:COMPILE_CHECK_ROWS]
    compile_by = min(max(task.soft_deadline, time.time() + COMPILE_SECONDS),
                     task.hard_deadline - 3 * COMPILE_SECONDS)
    package.save(predictor, _metadata(ctx, task, family.label, objective, metrics, threshold,
                                      infos, len(estimators)), out,
                 sample=ctx.X.iloc[check_rows], deadline=compile_by)
    model = package.load(out)
    sample_rows = ctx.split.folds[0][1][:200]
    timing = measure(model, ctx.X.iloc[sample_rows])
    return TrialResult(
        task.candidate, "Completed", objective=objective, metrics=metrics, threshold=threshold,
        fit_seconds=fit_seconds, latency_ms_p50=timing["latency_ms_p50"],
        throughput_rows_s=timing["throughput_rows_s"], model_bytes=package.directory_bytes(out),
        artifact_dir=str(out),
        details={"infos": infos, "estimators": len(estimators), "n_threads": ctx.n_threads,
                 "train_rows": task.train_rows,
                 "package_seconds": time.time() - started - fit_seconds},
    )


def _fit_folds(ctx: TrialContext, task: TrialTask, family: ModelFamily,
               encoded: Callable[[np.ndarray], Any], folds: list[tuple[np.ndarray, np.ndarray]],
               fit_data: FitDataFn, fit_deadline: float, n_classes: int):
    """Fit on each fold's training part; score the out-of-fold predictions."""
    shape = (len(ctx.y), n_classes) if n_classes else (len(ctx.y),)
    oof = np.full(shape, np.nan)
    estimators, infos = [], []
    n_fits = len(folds)
    for i, (tr, va) in enumerate(folds):
        share = (fit_deadline - time.time()) / (n_fits - i)  # an equal share of what is left
        data = fit_data(tr, va, time.time() + max(share, 0.5))
        fit_started = time.time()
        est = family.fit(dict(task.params), data)
        data.info["seconds"] = time.time() - fit_started
        oof[va] = family.predict(est, encoded(va), ctx.problem_type)
        estimators.append(est)
        infos.append(data.info)
    valid_rows = ctx.split.validation_rows()
    y_valid, pred = ctx.y[valid_rows], oof[valid_rows]
    w = None if ctx.weights is None else ctx.weights[valid_rows]
    threshold = tune_threshold(ctx.metric, y_valid, pred, w) if n_classes == 2 else None
    objective = score(ctx.metric, y_valid, pred, w, threshold)
    metrics = score_all(ctx.problem_type, y_valid, pred, w, threshold)
    return estimators, infos, (objective, metrics, threshold), pred


def _metadata(ctx: TrialContext, task: TrialTask, label: str, objective: float,
              metrics: dict[str, float], threshold: float | None, infos: list[dict[str, Any]],
              n_estimators: int) -> dict[str, Any]:
    return {
        "job": ctx.job_name,
        "candidate": task.candidate,
        "algorithm": label,
        "family": task.family,
        "hyperparameters": task.params,
        "problem_type": ctx.problem_type.value,
        "target": ctx.target,
        "objective_metric": ctx.metric.name,
        "objective_value": objective,
        "validation_metrics": metrics,
        "validation": ctx.split.kind,
        "refit_of": task.refit_of["candidate"] if task.refit_of else None,
        "threshold": threshold,
        "classes": ctx.classes,
        "input_schema": ctx.schema.to_dict(),
        "features": ctx.schema.features,
        "fits": infos,
        "estimators": n_estimators,
        "n_threads": ctx.n_threads,
        "train_rows": task.train_rows,  # a subsample's size per fold; None: every row
        "created": time.time(),
    }
