"""One trial: fit a candidate pipeline on each fold, score it, package it, time it."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tabpilot.artifacts import package
from tabpilot.artifacts.latency import measure
from tabpilot.artifacts.predictor import Predictor
from tabpilot.execution.base import TrialContext, TrialResult, TrialTask
from tabpilot.features import build_encoder
from tabpilot.metrics import score, score_all, tune_threshold
from tabpilot.models import FitData, get_family

PACKAGING_SECONDS = 1.0  # kept free before the soft deadline for saving and timing the model


def run_trial(ctx: TrialContext, task: TrialTask) -> TrialResult:
    warnings.filterwarnings("ignore")
    started = time.time()
    family = get_family(task.family)
    fit_deadline = task.soft_deadline - PACKAGING_SECONDS
    n_classes = len(ctx.classes) if ctx.classes else 0
    train_rows = np.sort(np.unique(np.concatenate([tr for tr, _ in ctx.split.folds])))
    encoder = build_encoder(ctx.schema, family.style).fit(ctx.X.iloc[train_rows])
    encoded = encoder.transform(ctx.X)
    cats = encoder.categorical_indices_ if family.style == "native" else []

    def fit_data(rows: np.ndarray, valid: np.ndarray | None, params_deadline: float) -> FitData:
        return FitData(
            X=encoded[rows], y=ctx.y[rows], problem_type=ctx.problem_type,
            n_classes=n_classes, categorical_indices=cats,
            weights=None if ctx.weights is None else ctx.weights[rows],
            X_valid=None if valid is None else encoded[valid],
            y_valid=None if valid is None else ctx.y[valid],
            deadline=params_deadline, n_threads=ctx.n_threads, seed=ctx.seed)

    shape = (len(ctx.y), n_classes) if n_classes else (len(ctx.y),)
    oof = np.full(shape, np.nan)
    estimators, infos = [], []
    for i, (tr, va) in enumerate(ctx.split.folds):
        # each remaining fold gets an equal share of the time left
        share = (fit_deadline - time.time()) / (len(ctx.split.folds) - i + (1 if ctx.split.is_cv else 0))
        data = fit_data(tr, va, time.time() + max(share, 0.5))
        est = family.fit(dict(task.params), data)
        oof[va] = family.predict(est, encoded[va], ctx.problem_type)
        estimators.append(est)
        infos.append(data.info)
    valid_rows = np.concatenate([va for _, va in ctx.split.folds])
    y_valid = ctx.y[valid_rows]
    pred = oof[valid_rows]
    w = None if ctx.weights is None else ctx.weights[valid_rows]
    threshold = tune_threshold(ctx.metric, y_valid, pred, w) if n_classes == 2 else None
    objective = score(ctx.metric, y_valid, pred, w, threshold)
    metrics = score_all(ctx.problem_type, y_valid, pred, w, threshold)
    if ctx.split.is_cv:
        estimators = _refit_or_bag(family, task, ctx, fit_data, train_rows, infos, estimators,
                                   fit_deadline)
    fit_seconds = time.time() - started
    predictor = Predictor(encoder, family.name, estimators, ctx.problem_type,
                          ctx.schema.features, ctx.classes, threshold)
    out = Path(task.output_dir)
    package.save(predictor, _metadata(ctx, task, family.label, objective, metrics, threshold,
                                      infos, len(estimators)), out)
    model = package.load(out)
    timing = measure(model, ctx.X.iloc[valid_rows[:200]])
    return TrialResult(
        task.candidate, "Completed", objective=objective, metrics=metrics, threshold=threshold,
        fit_seconds=fit_seconds, latency_ms_p50=timing["latency_ms_p50"],
        throughput_rows_s=timing["throughput_rows_s"], model_bytes=package.directory_bytes(out),
        artifact_dir=str(out),
        details={"best_iteration": [i.get("best_iteration") for i in infos],
                 "n_estimators_packaged": len(estimators)},
    )


def _refit_or_bag(family, task, ctx, fit_data, rows, infos, fold_estimators, deadline):
    """After k-fold: refit on every row when the time allows, else keep the fold models."""
    if deadline - time.time() < 1.0:
        return fold_estimators
    params = family.refit_params(dict(task.params), infos)
    data = fit_data(rows, None, deadline)
    return [family.fit(params, data)]


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
        "threshold": threshold,
        "classes": ctx.classes,
        "input_schema": ctx.schema.to_dict(),
        "features": ctx.schema.features,
        "fold_fits": infos,
        "estimators": n_estimators,
        "created": time.time(),
    }
