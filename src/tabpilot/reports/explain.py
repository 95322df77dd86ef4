"""Explanations on the raw input columns, not the encoded ones.

Gradient-boosting candidates use exact TreeSHAP from their own library (LightGBM
pred_contrib, XGBoost pred_contribs, CatBoost ShapValues), summed over the encoded columns
each raw column produced. Every other model (linear, forests, MLP, ensembles) uses
model-agnostic methods: permutation importance globally, and per row the change in the
prediction when a column is replaced by its training baseline (median or most frequent
value).

`explanation` gathers what the Explainability report shows: that importance, a SHAP
summary of the top columns (per-row values with the columns' own values beside them, the
method that made them and their units) and partial dependence / ICE curves, all
JSON-ready so that a report or a notebook draws them without the model.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.artifacts.predictor import BasePredictor, Predictor
from tabpilot.metrics import Metric, score
from tabpilot.models import get_family
from tabpilot.tasks import ProblemType

TREE_SHAP_FAMILIES = ("lightgbm", "xgboost", "catboost")
MANY_ROWS = 100
BATCH_ROWS = 20_000  # rows of changed copies predicted in one call (occlusion)


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


def uses_tree_shap(predictor: BasePredictor) -> bool:
    return isinstance(predictor, Predictor) and predictor.family in TREE_SHAP_FAMILIES


def _log_link(predictor: BasePredictor) -> bool:
    """A regression model fitted with Tweedie's loss (LightGBM's, XGBoost's): its margin
    is a log (ModelFamily.log_link)."""
    return isinstance(predictor, Predictor) and \
        get_family(predictor.family).log_link(predictor.estimators[0])


def units(predictor: BasePredictor, method: str) -> str:
    """What one contribution of `explain` measures, in words (e.g. log-odds of "Yes")."""
    ptype, classes = predictor.problem_type, list(predictor.classes or [])
    if ptype is ProblemType.REGRESSION:
        return "the log of the predicted value (a Tweedie model's link)" \
            if method == "tree_shap" and _log_link(predictor) else "the target's units"
    if method == "tree_shap":
        return (f'log-odds of "{classes[1]}"' if ptype is ProblemType.BINARY and classes
                else "log-odds (softmax margin) of each row's predicted class")
    return (f'probability of "{classes[1]}"' if ptype is ProblemType.BINARY and classes
            else "probability of each row's predicted class")


def explain(predictor: BasePredictor, X: pd.DataFrame, background: pd.DataFrame | None = None,
            columns: list[str] | None = None) -> pd.DataFrame:
    """Per-row contributions of each raw feature column: to the positive class's output for
    binary problems, to the predicted class's for multiclass ones.

    attrs["method"] says how: "tree_shap" (margin units, log-odds for classification; with
    attrs["base_value"], so that base + contributions = the margin) or "baseline_occlusion"
    (change in the positive or predicted class's probability, or the value, when the column
    takes its baseline value; only `columns` when given, as occlusion costs a prediction
    per column). attrs["units"] says it in words.
    """
    features = list(predictor.features)
    classes = _predicted_class(predictor, X)
    if predictor.problem_type is ProblemType.BINARY:
        classes = np.ones(len(X), dtype=int)  # one sign for every row: towards the positive
    if uses_tree_shap(predictor):
        contrib = _tree_contributions(predictor, X)
        per_row = contrib[np.arange(len(X)), classes if contrib.shape[1] > 1 else 0]
        values = _to_raw_columns(per_row[:, :-1], _raw_columns(predictor), features)
        frame = pd.DataFrame(values, columns=features, index=X.index)
        frame.attrs.update(method="tree_shap", base_value=per_row[:, -1].tolist(),
                           units=units(predictor, "tree_shap"))
        return frame[columns] if columns is not None else frame
    reference = _output(predictor, X, classes)
    base = _baseline(predictor, background if background is not None else X)
    chosen = features if columns is None else list(columns)
    values = np.zeros((len(X), len(chosen)))
    # several columns' changed copies in one prediction: an ensemble's cost is mostly per
    # call, not per row
    per_call = max(1, BATCH_ROWS // max(len(X), 1))
    for start in range(0, len(chosen), per_call):
        group = chosen[start:start + per_call]
        changed = pd.concat([X] * len(group), ignore_index=True)
        for i, col in enumerate(group):  # block i: column `col` at its baseline
            if pd.api.types.is_integer_dtype(changed[col]):  # a median may be 29.5
                changed[col] = changed[col].astype(np.float64)
            changed.iloc[i * len(X):(i + 1) * len(X), changed.columns.get_loc(col)] = base[col]
        out = _output(predictor, changed, np.tile(classes, len(group)))
        values[:, start:start + len(group)] = (
            reference[:, None] - out.reshape(len(group), len(X)).T)
    frame = pd.DataFrame(values, columns=chosen, index=X.index)
    frame.attrs.update(method="baseline_occlusion",
                       units=units(predictor, "baseline_occlusion"))
    return frame


def global_importance(predictor: BasePredictor, X: pd.DataFrame, y: np.ndarray,
                      metric: Metric, threshold: float | None = None, seed: int = 0,
                      deadline: float | None = None) -> dict[str, Any]:
    """Importance of each raw column: mean |TreeSHAP| where native, else permutation.

    With `deadline` (time.time()), permutation stops with TimeoutError once it has passed,
    at most one prediction late: a slow model's report must not overrun the job's limit."""
    if uses_tree_shap(predictor):
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


SUMMARY_FEATURES = 10  # columns in the SHAP summary (beeswarm)
SUMMARY_ROWS = 500  # rows kept for it: enough dots to see a shape, a small JSON
OCCLUSION_ROWS = 200  # fewer where each column costs a prediction (no TreeSHAP)
CURVE_FEATURES = 3  # columns with dependence and partial dependence plots
PD_ROWS = 60  # rows whose ICE curves make the partial dependence
PD_GRID = 15  # values a numeric column sweeps
PD_CATEGORIES = 12  # most frequent categories a categorical column sweeps
ICE_KEPT = 40  # ICE curves kept for the chart
MAX_CLASS_CURVES = 6


def _plain(v: Any) -> Any:
    """A cell as JSON: a float for numbers, a string for anything else, None if missing."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    if isinstance(v, (bool, np.bool_)):
        return str(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return round(float(v), 6)
    return str(v)


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def shap_summary(predictor: BasePredictor, X: pd.DataFrame, top: list[str],
                 contributions: pd.DataFrame | None = None, rows: int = SUMMARY_ROWS,
                 seed: int = 0) -> dict[str, Any]:
    """Per-row contributions of the `top` columns on up to `rows` rows, with those rows'
    values (to colour a beeswarm), the method that made them and their units."""
    if len(X) > rows:
        pick = np.sort(np.random.default_rng(seed).choice(len(X), rows, replace=False))
        X = X.iloc[pick]
        contributions = contributions.iloc[pick] if contributions is not None else None
    frame = contributions if contributions is not None else explain(predictor, X, columns=top)
    base = frame.attrs.get("base_value")
    return {
        "method": frame.attrs["method"], "units": frame.attrs["units"],
        "base_value": float(np.mean(base)) if base else None,
        "features": list(top), "rows": int(len(X)),
        "values": np.round(frame[top].to_numpy(dtype=float), 6).tolist(),
        "feature_values": {c: [_plain(v) for v in X[c].tolist()] for c in top},
    }


def free_text(values: list[Any] | pd.Series) -> bool:
    """Whether a column's values read as free text (reviews, notes, titles): strings, most
    of them distinct, the middle one of several words. Its values make no axis: a chart
    or a sweep takes their lengths in words (`word_counts`) instead, or leaves the column out."""
    strings = [v for v in values if isinstance(v, str)]
    return len(strings) >= 2 and len(set(strings)) > len(strings) / 2 and \
        float(np.median([len(v.split()) for v in strings])) >= 3


def word_counts(values: list[Any]) -> list[int | None]:
    """Each value's length in words (None where missing): free text's axis."""
    return [len(v.split()) if isinstance(v, str) else None for v in values]


def _grid(s: pd.Series) -> tuple[list[Any], bool] | None:
    values = s.dropna()
    if values.empty or free_text(values):
        return None
    if _is_numeric(values):
        unique = np.unique(values.to_numpy(dtype=float))
        if len(unique) <= PD_GRID:
            return unique.tolist(), True
        return np.unique(np.quantile(values.to_numpy(dtype=float),
                                     np.linspace(0.05, 0.95, PD_GRID))).tolist(), True
    counts = values.astype(str).value_counts()
    if len(counts) > PD_CATEGORIES and counts.iloc[0] < 2:  # every value apart: ids
        return None
    top = set(counts.index[:PD_CATEGORIES])
    # the column's own values (not their strings), most frequent first
    firsts = values[values.astype(str).isin(top)].drop_duplicates()
    order = {c: i for i, c in enumerate(counts.index)}
    return sorted(firsts.tolist(), key=lambda v: order[str(v)]), False


def partial_dependence(predictor: BasePredictor, X: pd.DataFrame, columns: list[str],
                       rows: int = PD_ROWS, seed: int = 0, deadline: float | None = None
                       ) -> dict[str, Any]:
    """Each column swept over its grid on `rows` rows (ICE), their average (partial
    dependence); for multiclass, the average probability of each class (no ICE). Columns
    not reached by `deadline` are left out and said so."""
    if len(X) > rows:
        pick = np.sort(np.random.default_rng(seed).choice(len(X), rows, replace=False))
        X = X.iloc[pick]
    X = X.reset_index(drop=True)
    ptype, classes = predictor.problem_type, [str(c) for c in (predictor.classes or [])]
    if ptype is ProblemType.REGRESSION:
        output = "predicted value"
    elif ptype is ProblemType.BINARY:
        output = f'probability of "{classes[1]}"'
    else:
        output = "probability of each class"
    out: dict[str, Any] = {"output": output, "rows": int(len(X)), "features": []}
    for col in columns:
        if deadline is not None and time.time() > deadline:
            out["stopped"] = (f"partial dependence ran out of time before {col!r} (the "
                              "report's share of the time limit)")
            break
        grid = _grid(X[col])
        if grid is None:
            continue
        values, numeric = grid
        swept = pd.concat([X] * len(values), ignore_index=True)
        swept[col] = np.repeat(np.asarray(values, dtype=object), len(X))
        if numeric:
            swept[col] = swept[col].astype(float)
        raw = predictor.raw_predict(swept)
        item: dict[str, Any] = {"feature": col, "numeric": numeric,
                                "grid": [_plain(v) for v in values]}
        if raw.ndim == 1 or ptype is ProblemType.BINARY:
            curves = (raw if raw.ndim == 1 else raw[:, 1]).reshape(len(values), len(X)).T
            item["average"] = {output: np.round(curves.mean(axis=0), 6).tolist()}
            item["ice"] = np.round(curves[:ICE_KEPT], 6).tolist()
        else:
            means = raw.reshape(len(values), len(X), -1).mean(axis=1)
            frequent = np.argsort(-means.mean(axis=0), kind="stable")[:MAX_CLASS_CURVES]
            item["average"] = {classes[k]: np.round(means[:, k], 6).tolist()
                               for k in sorted(frequent)}
            item["ice"] = None
        out["features"].append(item)
    return out


def explanation(predictor: BasePredictor, X: pd.DataFrame, y: np.ndarray, metric: Metric,
                threshold: float | None = None, seed: int = 0,
                deadline: float | None = None) -> dict[str, Any]:
    """The Explainability report's content: importance (TimeoutError past `deadline`, as
    `global_importance`), then the SHAP summary and partial dependence of the top columns.

    Tree boosters' TreeSHAP values are computed once and serve both the importance and the
    summary. For other models the summary is baseline occlusion on the top columns only
    (one prediction per column), after permutation importance has named them."""
    contributions = explain(predictor, X) if uses_tree_shap(predictor) else None
    if contributions is not None:
        ordered = contributions.abs().mean(axis=0).sort_values(ascending=False)
        importance = {"method": "tree_shap_mean_abs",
                      "importance": [{"feature": str(k), "value": float(v)}
                                     for k, v in ordered.items()]}
    else:
        importance = global_importance(predictor, X, y, metric, threshold, seed, deadline)
    importance["units"] = units(predictor, "tree_shap" if contributions is not None
                                else "baseline_occlusion")
    ranked = [f["feature"] for f in importance["importance"]]
    out: dict[str, Any] = {"feature_importance": importance}
    top = ranked[:SUMMARY_FEATURES]
    if top and (deadline is None or time.time() < deadline):
        out["shap"] = shap_summary(predictor, X, top, contributions, seed=seed,
                                   rows=SUMMARY_ROWS if contributions is not None
                                   else OCCLUSION_ROWS)
    if ranked and (deadline is None or time.time() < deadline):
        out["partial_dependence"] = partial_dependence(predictor, X, ranked[:CURVE_FEATURES],
                                                       seed=seed, deadline=deadline)
    return out
