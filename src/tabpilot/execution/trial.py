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
from tabpilot.diagnostics.candidate import diagnose_trial, take_curves
from tabpilot.execution.base import (
    RAW_TIMING_ROWS,
    RAW_VALIDATION_ROWS,
    TrialContext,
    TrialResult,
    TrialTask,
)
from tabpilot.execution.sharedtable import SharedEncodings
from tabpilot.features import build_encoder
from tabpilot.features.builder import STYLES
from tabpilot.metrics import score, score_all, tune_threshold
from tabpilot.models import FitData, ModelFamily, get_family

VALIDATION_PREDICTIONS = "validation_predictions.npy"
PACKAGING_SECONDS = 1.0  # kept free before the soft deadline for saving and timing the model
COMPILE_SECONDS = 1.0  # what the compiled path may add to a trial that used all its time

ENCODE_CHUNK_ROWS = 100_000  # rows a boosting trial encodes at once
# the tabular styles: a dense matrix, whose file every trial can map (text gives sparse ones)
SHAREABLE_STYLES = frozenset(STYLES)

FitDataFn = Callable[[np.ndarray, "np.ndarray | None", float], FitData]


def run_trial(ctx: TrialContext, task: TrialTask) -> TrialResult:
    if task.distill_of is not None:
        from tabpilot.execution.distill import run_distillation  # it builds on this module

        return run_distillation(ctx, task)
    warnings.filterwarnings("ignore")
    started = time.time()
    family = get_family(task.family)
    fit_deadline = task.soft_deadline - PACKAGING_SECONDS
    n_classes = len(ctx.classes) if ctx.classes else 0
    rows = subsample(ctx.split.training_rows(), task.train_rows, ctx.seed)
    folds = [(subsample(tr, task.train_rows, ctx.seed + i), va)
             for i, (tr, va) in enumerate(ctx.split.folds)]
    # a fit may overwrite its rows in place when no later fit reads them (one fit, or a copy)
    # trials on the split's own rows share one encoding of them per style (sharedtable.py);
    # a refit's is theirs, its encoder fitted on the training part (Split.refit_rows)
    shared = SharedEncodings.beside(ctx.table) if task.train_rows is None and \
        family.style in SHAREABLE_STYLES else None
    encoded = _Encoded(ctx, family.style, rows, folds, n_classes,
                       writable_views=task.refit_of is not None or len(folds) == 1,
                       shared=shared)
    fit_data = encoded.fit_data

    if task.refit_of is not None:
        parent = task.refit_of
        params = family.refit_params(dict(task.params), parent["infos"])
        fit_started = time.time()
        data = fit_data(ctx.split.refit_rows(), None, fit_deadline)
        estimators = [family.fit(params, data)]
        if data.info.get("stopped_by_deadline"):
            raise TimeoutError("the refit on all rows ran out of time; the model trained on "
                               "the training part stays")
        refit_seconds = time.time() - fit_started
        infos = [{"refit_of": parent["candidate"], "n_estimators": params.get("n_estimators"),
                  "seconds": refit_seconds, "curves": data.info.get("curves")}]
        scores = (parent["objective"], parent["metrics"], parent["threshold"])
        del data
    else:
        estimators, infos, scores, valid_pred = _fit_folds(
            ctx, task, family, encoded.matrix, folds, fit_data, fit_deadline, n_classes)
        # kept beside the model for ensemble selection (rows in the split's validation order)
        out_dir = Path(task.output_dir).parent
        out_dir.mkdir(parents=True, exist_ok=True)
        np.save(out_dir / VALIDATION_PREDICTIONS, valid_pred.astype(np.float32))
    encoder = encoded.encoder
    del encoded, fit_data  # the encoded rows: packaging needs only a few original rows
    return package_trial(ctx, task, family, encoder, estimators, scores, infos, started)


def package_trial(ctx: TrialContext, task: TrialTask, family: ModelFamily, encoder: Any,
                  estimators: list[Any], scores: tuple[float, dict[str, float], float | None],
                  infos: list[dict[str, Any]], started: float,
                  extra: dict[str, Any] | None = None) -> TrialResult:
    """Package a trial's fitted pipeline (compiled path checked), time it, and report it.
    `extra`: entries added to the model's metadata (a distilled model's teacher)."""
    objective, metrics, threshold = scores
    fit_seconds = time.time() - started  # preprocessing, folds, scoring and any refit
    # beside the model directory, outside its manifest (diagnostics/files.py)
    n_classes = len(ctx.classes) if ctx.classes else 0
    diagnose_trial(Path(task.output_dir).parent, take_curves(infos),
                   ctx.y[ctx.split.refit_rows() if task.refit_of is not None
                        else ctx.split.training_rows()]
                   if n_classes else None, n_classes, ctx.classes)
    predictor = Predictor(encoder, family.name, estimators, ctx.problem_type,
                          ctx.schema.features, ctx.classes, threshold)
    out = Path(task.output_dir)
    # the compiled path is checked on validation rows; it may take the trial up to
    # COMPILE_SECONDS past its soft deadline, never near the hard one
    check_rows = ctx.split.validation_rows()[:RAW_VALIDATION_ROWS]
    compile_by = min(max(task.soft_deadline, time.time() + COMPILE_SECONDS),
                     task.hard_deadline - 3 * COMPILE_SECONDS)
    metadata = _metadata(ctx, task, family.label, objective, metrics, threshold, infos,
                         len(estimators))
    package.save(predictor, {**metadata, **(extra or {})}, out, sample=ctx.raw(check_rows),
                 deadline=compile_by)
    model = package.load(out)
    sample_rows = ctx.split.folds[0][1][:RAW_TIMING_ROWS]
    timing = measure(model, ctx.raw(sample_rows))
    return TrialResult(
        task.candidate, "Completed", objective=objective, metrics=metrics, threshold=threshold,
        fit_seconds=fit_seconds, latency_ms_p50=timing["latency_ms_p50"],
        throughput_rows_s=timing["throughput_rows_s"], model_bytes=package.directory_bytes(out),
        artifact_dir=str(out),
        details={"infos": infos, "estimators": len(estimators), "n_threads": ctx.n_threads,
                 "train_rows": task.train_rows,
                 "package_seconds": time.time() - started - fit_seconds},
    )


class _Encoded:
    """The encoder fitted on a trial's training rows, and every row the trial touches,
    encoded once.

    Rows are laid out fit rows first, then each fold's rows not yet placed: a holdout's
    fit and validation parts are then contiguous, and a model gets views of them rather
    than copies. Only these rows are read from the table (a subsample's trial stays small).
    """

    def __init__(self, ctx: TrialContext, style: str, rows: np.ndarray,
                 folds: list[tuple[np.ndarray, np.ndarray]], n_classes: int,
                 writable_views: bool, shared: SharedEncodings | None = None) -> None:
        self._ctx, self._n_classes, self._writable_views = ctx, n_classes, writable_views
        order = _layout([rows, *[part for fold in folds for part in fold]])
        self._at = np.full(len(ctx.y), -1, dtype=np.int64)
        self._at[order] = np.arange(len(order))
        if shared is None:
            self.encoder, self._encoded = self._encode(style, rows, order)
        else:  # read-only pages shared with the job's other trials: no fit writes into them
            self.encoder, self._encoded = shared.get(
                style, lambda: self._encode(style, rows, order))
            self._writable_views = False
        self._cats = self.encoder.categorical_indices_ if style == "native" else []

    def _encode(self, style: str, rows: np.ndarray, order: np.ndarray) -> tuple[Any, Any]:
        """The encoder fitted on `rows` and the rows of `order` encoded, in that order."""
        ctx = self._ctx
        identity = len(order) == len(ctx.y) and bool(np.all(order[1:] > order[:-1]))
        frame = ctx.features(None if identity else order)
        start, is_view = self._positions(rows)
        fit_frame = frame.iloc[start] if not is_view else frame.iloc[start: start + len(rows)]
        encoder = build_encoder(ctx.schema, style).fit(fit_frame)
        del fit_frame
        # gradient boosting reads its input as float32 (XGBoost, CatBoost) or bins it
        # (LightGBM): the same values in half the memory give the same model
        encoded = encode_narrow(encoder, frame) if style == "native" \
            else encoder.transform(frame)
        return encoder, encoded

    def _positions(self, rows: np.ndarray) -> tuple[Any, bool]:
        """Where `rows` lie: (first position, True) when contiguous, else (positions, False)."""
        at = self._at[rows]
        if len(at) and at[-1] - at[0] == len(at) - 1 and bool(np.all(np.diff(at) == 1)):
            return int(at[0]), True
        return at, False

    def rows(self, rows: np.ndarray) -> tuple[Any, bool]:
        """The encoded `rows` and whether they are a view of the shared matrix."""
        where, is_view = self._positions(rows)
        if is_view:
            return self._encoded[where: where + len(rows)], True
        return self._encoded[where], False

    def matrix(self, rows: np.ndarray) -> Any:
        return self.rows(rows)[0]

    def fit_data(self, fit_rows: np.ndarray, valid: np.ndarray | None, deadline: float
                 ) -> FitData:
        ctx = self._ctx
        X, is_view = self.rows(fit_rows)
        return FitData(
            X=X, y=ctx.y[fit_rows], problem_type=ctx.problem_type,
            n_classes=self._n_classes, categorical_indices=self._cats,
            weights=None if ctx.weights is None else ctx.weights[fit_rows],
            X_valid=None if valid is None else self.matrix(valid),
            y_valid=None if valid is None else ctx.y[valid],
            deadline=deadline, n_threads=ctx.n_threads, seed=ctx.seed,
            X_writable=self._writable_views or not is_view)


def _exact(matrix: np.ndarray) -> bool:
    """Every value of a float64 matrix is exactly a float32 (NaN included)."""
    return all(np.array_equal(matrix[:, j].astype(np.float32), matrix[:, j], equal_nan=True)
               for j in range(matrix.shape[1]))


def narrow_exact(matrix: Any) -> Any:
    """A dense float64 matrix as float32 when every value is exactly a float32 (numbers
    read as float32, category codes); else the matrix itself."""
    if not isinstance(matrix, np.ndarray) or matrix.dtype != np.float64 or not _exact(matrix):
        return matrix
    return matrix.astype(np.float32)


def encode_narrow(encoder: Any, frame: Any) -> Any:
    """`encoder.transform(frame)`, narrowed to float32 where that is exact (see
    narrow_exact), encoded ENCODE_CHUNK_ROWS rows at a time into the final matrix, so the
    float64 encoding of every row never exists beside it. Sparse (text) output: whole."""
    if getattr(encoder, "text", None):
        return narrow_exact(encoder.transform(frame))
    n = len(frame)
    # chunks of at least ENCODE_CHUNK_ROWS rows (all of them when fewer)
    edges = np.linspace(0, n, max(1, n // ENCODE_CHUNK_ROWS) + 1).astype(int)
    out: np.ndarray | None = None
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        block = encoder.transform(frame.iloc[a:b])
        exact = _exact(block)
        if out is None:
            out = np.empty((n, block.shape[1]), dtype=np.float32 if exact else np.float64)
        elif out.dtype == np.float32 and not exact:
            out = out.astype(np.float64)  # the rows so far were exact: widened unchanged
        out[a:b] = block
    assert out is not None
    return out


def _layout(parts: list[np.ndarray]) -> np.ndarray:
    """The distinct rows of `parts`, in the order they first appear."""
    every = np.concatenate(parts)
    _, first = np.unique(every, return_index=True)
    return every[np.sort(first)]


def _fit_folds(ctx: TrialContext, task: TrialTask, family: ModelFamily,
               encoded: Callable[[np.ndarray], Any], folds: list[tuple[np.ndarray, np.ndarray]],
               fit_data: FitDataFn, fit_deadline: float, n_classes: int,
               fold_params: list[dict[str, Any]] | None = None):
    """Fit on each fold's training part; score the out-of-fold predictions. `fold_params`:
    each fold's own parameters (default: the task's)."""
    shape = (len(ctx.y), n_classes) if n_classes else (len(ctx.y),)
    oof = np.full(shape, np.nan)
    estimators, infos = [], []
    n_fits = len(folds)
    for i, (tr, va) in enumerate(folds):
        share = (fit_deadline - time.time()) / (n_fits - i)  # an equal share of what is left
        data = fit_data(tr, va, time.time() + max(share, 0.5))
        fit_started = time.time()
        est = family.fit(dict(task.params if fold_params is None else fold_params[i]), data)
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
