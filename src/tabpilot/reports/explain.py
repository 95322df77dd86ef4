"""Explanations on the raw input columns, not the encoded ones.

Gradient-boosting candidates use exact TreeSHAP from their own library (LightGBM
pred_contrib, XGBoost pred_contribs, CatBoost ShapValues), summed over the encoded columns
each raw column produced. Every other model (linear, forests, MLP, ensembles) uses
model-agnostic methods: permutation importance globally, and per row the change in the
prediction when a column is replaced by its training baseline (median or most frequent
value).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.artifacts.predictor import BasePredictor, Predictor
from tabpilot.metrics import Metric, score
from tabpilot.tasks import ProblemType

TREE_SHAP_FAMILIES = ("lightgbm", "xgboost", "catboost")
MANY_ROWS = 100


def _raw_columns(predictor: Predictor) -> list[str]:
    return list(predictor.encoder.source_columns())


def _tree_contributions(predictor: Predictor, X: pd.DataFrame) -> np.ndarray:
    """(rows, classes or 1, encoded features + 1) contributions in margin units."""
    encoded = predictor.encoder.transform(X)
    # a report's hundreds of rows use every core; a row or two, one thread (no pool wake-up)
    threads = (os.cpu_count() or 1) if len(X) >= MANY_ROWS else 1
    outs = []
    for est in predictor.estimators:
        if predictor.family == "lightgbm":
            raw = est.predict(encoded, pred_contrib=True, num_threads=threads)
            # sparse input (text columns) gives sparse contributions, one matrix per class
            parts = raw if isinstance(raw, list) else [raw]
            raw = np.hstack([p.toarray() if hasattr(p, "toarray") else np.asarray(p)
                             for p in parts])
        elif predictor.family == "xgboost":
            import xgboost as xgb

            dm = xgb.DMatrix(encoded, feature_types=est.feature_types, enable_categorical=True)
            est.set_param({"nthread": threads})
            try:
                raw = np.asarray(est.predict(dm, pred_contribs=True))
            finally:
                est.set_param({"nthread": 1})  # as packaged: serving answers row by row
        else:
            from tabpilot.models.catboost import _pool

            raw = np.asarray(est.model.get_feature_importance(
                _pool(encoded, est.categorical_indices), type="ShapValues",
                thread_count=threads))
        outs.append(raw)
    raw = np.mean(outs, axis=0)
    width = encoded.shape[1] + 1
    if raw.ndim == 2:
        raw = raw.reshape(len(X), -1, width)
    return raw


def _to_raw_columns(contrib: np.ndarray, sources: list[str], features: list[str]) -> np.ndarray:
    """Sum encoded-column contributions into raw columns: (rows, len(features))."""
    index = {f: i for i, f in enumerate(features)}
    out = np.zeros((contrib.shape[0], len(features)))
    for j, src in enumerate(sources):
        out[:, index[src]] += contrib[:, j]
    return out


def _predicted_class(predictor: BasePredictor, X: pd.DataFrame) -> np.ndarray:
    if predictor.problem_type is ProblemType.REGRESSION:
        return np.zeros(len(X), dtype=int)
    return predictor.labels_from_index(predictor.raw_predict(X))


def _baseline(predictor: BasePredictor, X: pd.DataFrame) -> dict[str, Any]:
    """A typical value per column: the sample's median, or its most frequent value."""
    base: dict[str, Any] = {}
    for col in predictor.features:
        values = X[col].dropna()
        if values.empty:
            base[col] = None
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            base[col] = values.median()
        else:
            base[col] = values.mode().iloc[0]
    return base


def _output(predictor: BasePredictor, X: pd.DataFrame, classes: np.ndarray) -> np.ndarray:
    raw = predictor.raw_predict(X)
    return raw if raw.ndim == 1 else raw[np.arange(len(X)), classes]


def explain(predictor: BasePredictor, X: pd.DataFrame, background: pd.DataFrame | None = None
            ) -> pd.DataFrame:
    """Per-row contributions of each raw feature column (to the predicted class's output).

    attrs["method"] says how: "tree_shap" (margin units, log-odds for classification) or
    "baseline_occlusion" (change in the predicted probability or value when the column
    takes its baseline value).
    """
    features = list(predictor.features)
    classes = _predicted_class(predictor, X)
    if isinstance(predictor, Predictor) and predictor.family in TREE_SHAP_FAMILIES:
        contrib = _tree_contributions(predictor, X)
        per_row = contrib[np.arange(len(X)), classes if contrib.shape[1] > 1 else 0]
        values = _to_raw_columns(per_row[:, :-1], _raw_columns(predictor), features)
        frame = pd.DataFrame(values, columns=features, index=X.index)
        frame.attrs.update(method="tree_shap", base_value=per_row[:, -1].tolist())
        return frame
    reference = _output(predictor, X, classes)
    base = _baseline(predictor, background if background is not None else X)
    values = np.zeros((len(X), len(features)))
    for j, col in enumerate(features):
        changed = X.copy()
        changed[col] = base[col]
        values[:, j] = reference - _output(predictor, changed, classes)
    frame = pd.DataFrame(values, columns=features, index=X.index)
    frame.attrs.update(method="baseline_occlusion")
    return frame


def global_importance(predictor: BasePredictor, X: pd.DataFrame, y: np.ndarray,
                      metric: Metric, threshold: float | None = None, seed: int = 0,
                      deadline: float | None = None) -> dict[str, Any]:
    """Importance of each raw column: mean |TreeSHAP| where native, else permutation.

    With `deadline` (time.time()), permutation stops with TimeoutError once it has passed,
    at most one prediction late: a slow model's report must not overrun the job's limit."""
    if isinstance(predictor, Predictor) and predictor.family in TREE_SHAP_FAMILIES:
        values = explain(predictor, X).abs().mean(axis=0)
        method = "tree_shap_mean_abs"
    else:
        rng = np.random.default_rng(seed)
        base = score(metric, y, predictor.raw_predict(X), None, threshold)
        drops = {}
        for i, col in enumerate(predictor.features):
            if deadline is not None and time.time() > deadline:
                raise TimeoutError(f"permutation importance ran out of time after {i} of "
                                   f"{len(predictor.features)} columns")
            shuffled = X.copy()
            shuffled[col] = rng.permutation(shuffled[col].to_numpy())
            drop = base - score(metric, y, predictor.raw_predict(shuffled), None, threshold)
            drops[col] = drop * metric.sign()
        values = pd.Series(drops)
        method = f"permutation_{metric.name}"
    ordered = values.sort_values(ascending=False)
    return {"method": method,
            "importance": [{"feature": str(k), "value": float(v)} for k, v in ordered.items()]}
