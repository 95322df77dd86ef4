"""Data analysis before training: statistics and insights that catch what ruins models.

Each insight has a severity (high, medium, low), the columns it concerns, a suggested fix
and, where numbers justify it, its evidence (JSON-ready). Everything runs on a seeded
sample so that analysis stays a small share of a job. Target leaks: data/leaks.py.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

from tabpilot.data.leaks import find_leaks
from tabpilot.data.schema import ColumnKind, Schema
from tabpilot.data.target_groups import target_groups
from tabpilot.tasks import ProblemType

SAMPLE_ROWS = 10_000
MISSING_MARKERS = ("?", "unknown", "", "na", "n/a", "null", "none", "-", "missing")
HIGH_CARDINALITY = 100


@dataclass
class Insight:
    severity: str  # high | medium | low
    kind: str
    message: str
    fix: str
    columns: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)  # the numbers behind it


def _sample(X: pd.DataFrame, y: np.ndarray, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    if len(X) <= SAMPLE_ROWS:
        return X, y
    idx = np.sort(np.random.default_rng(seed).choice(len(X), SAMPLE_ROWS, replace=False))
    return X.iloc[idx], y[idx]


def _numeric_matrix(X: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Numeric columns as floats, categoricals as frequency-ranked codes (for MI and trees)."""
    out = {}
    for col in schema.features:
        kind = schema.kinds[col]
        if kind is ColumnKind.NUMERIC:
            out[col] = pd.to_numeric(X[col], errors="coerce")
        elif kind in (ColumnKind.CATEGORICAL, ColumnKind.TEXT):
            codes = X[col].astype("string").map(X[col].astype("string").value_counts().rank(
                method="first", ascending=False))
            out[col] = codes.astype(float)
    return pd.DataFrame(out, index=X.index)


def prediction_power(X: pd.DataFrame, y: np.ndarray, schema: Schema, ptype: ProblemType,
                     seed: int = 0) -> dict[str, float]:
    """0..1 per feature: mutual information with the target, normalised by its entropy."""
    M = _numeric_matrix(X, schema)
    if M.empty:
        return {}
    filled = M.fillna(M.median()).fillna(0)
    # a column whose every value is distinct (free text) is no discrete variable:
    # scikit-learn's estimator drops single-row labels and would be left with no rows
    discrete = [schema.kinds[c] is not ColumnKind.NUMERIC and bool(filled[c].duplicated().any())
                for c in M.columns]
    if ptype.is_classification:
        mi = mutual_info_classif(filled, y, discrete_features=discrete, random_state=seed)
        counts = np.bincount(y) / len(y)
        entropy = -np.sum(counts[counts > 0] * np.log(counts[counts > 0]))
    else:
        mi = mutual_info_regression(filled, y, discrete_features=discrete, random_state=seed)
        entropy = 0.5 * np.log(2 * np.pi * np.e * max(np.var(y), 1e-12))
        entropy = max(entropy, 1.0)
    power = np.clip(mi / max(entropy, 1e-12), 0, 1)
    return dict(sorted(zip(M.columns, map(float, power), strict=True), key=lambda kv: -kv[1]))


def column_stats(X: pd.DataFrame, schema: Schema) -> list[dict[str, Any]]:
    rows = []
    for col in X.columns:
        s = X[col]
        stats: dict[str, Any] = {"column": str(col), "kind": schema.kinds[col].value,
                                 "missing_fraction": float(s.isna().mean()),
                                 "unique": int(s.nunique(dropna=True))}
        if schema.kinds[col] is ColumnKind.NUMERIC:
            v = pd.to_numeric(s, errors="coerce")
            stats.update(mean=_f(v.mean()), std=_f(v.std()), min=_f(v.min()), max=_f(v.max()),
                         skew=_f(v.skew()))
        else:
            top = s.astype("string").value_counts().head(3)
            stats["top_values"] = {str(k): int(c) for k, c in top.items()}
        rows.append(stats)
    return rows


def _f(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def insights_for(X: pd.DataFrame, y: np.ndarray, schema: Schema, ptype: ProblemType,
                 classes: list | None, stats: list[dict[str, Any]], seed: int = 0
                 ) -> list[Insight]:
    out = [Insight(leak.severity, "target_leakage", leak.message, leak.fix,
                   [leak.column] if leak.column in X.columns else [], leak.evidence)
           for leak in find_leaks(X, y, schema, ptype, classes, seed)]
    dups = int(X.assign(__y=y).duplicated().sum())
    if dups:
        sev = "medium" if dups / len(X) > 0.05 else "low"
        out.append(Insight(sev, "duplicate_rows", f"{dups} duplicate rows in the sample",
                           "drop duplicates, or check that they are real repeated events"))
    by_kind = {k: schema.columns(k) for k in (ColumnKind.CONSTANT, ColumnKind.ID)}
    if by_kind[ColumnKind.CONSTANT]:
        out.append(Insight("low", "constant_columns", "constant columns are ignored",
                           "drop them from the table", by_kind[ColumnKind.CONSTANT]))
    if by_kind[ColumnKind.ID]:
        out.append(Insight("low", "id_columns", "id-like columns are ignored",
                           "keep them out of the features (or set their type with "
                           "--feature-types if they carry meaning)", by_kind[ColumnKind.ID]))
    for st in stats:
        col = st["column"]
        if st["kind"] == "categorical" and st["unique"] > HIGH_CARDINALITY:
            out.append(Insight("medium", "high_cardinality",
                               f"{col!r} has {st['unique']} categories",
                               "group rare categories, or declare it text if it is free text",
                               [col]))
        markers = [k for k in st.get("top_values", {})
                   if k.strip().lower() in MISSING_MARKERS]
        if markers:
            out.append(Insight("medium", "missing_value_markers",
                               f"{col!r} holds {markers[0]!r}, which looks like a missing-"
                               "value marker", f"pass --na-value {markers[0]!r}", [col]))
        if st["kind"] == "numeric" and st.get("skew") is not None and abs(st["skew"]) > 10:
            out.append(Insight("low", "heavy_skew", f"{col!r} is heavily skewed "
                               f"(skew {st['skew']:.1f})", "a log transform helps linear "
                               "models; trees do not mind", [col]))
    if ptype.is_classification and classes:
        counts = np.bincount(y, minlength=len(classes))
        minority = counts.min() / counts.sum()
        if minority < 0.05:
            out.append(Insight("medium" if minority > 0.01 else "high", "class_imbalance",
                               f"class {classes[int(np.argmin(counts))]!r} is "
                               f"{minority:.1%} of the rows",
                               "prefer AUC, F1 or BalancedAccuracy over Accuracy"))
    elif ptype is ProblemType.REGRESSION:
        z = np.abs((y - np.median(y)) / (np.std(y) or 1))
        n_out = int((z > 5).sum())
        if n_out:
            out.append(Insight("medium", "target_outliers",
                               f"{n_out} target values lie beyond 5 standard deviations",
                               "check them; consider MAE or a log-transformed target"))
    order = {"high": 0, "medium": 1, "low": 2}
    return sorted(out, key=lambda i: order[i.severity])


def anomalies(X: pd.DataFrame, schema: Schema, seed: int = 0, top: int = 10) -> list[int]:
    """Row positions (in the sample) that an IsolationForest finds most anomalous."""
    M = _numeric_matrix(X, schema)
    if M.empty or len(M) < 20:
        return []
    filled = M.fillna(M.median()).fillna(0)
    forest = IsolationForest(n_estimators=50, random_state=seed).fit(filled)
    return [int(i) for i in np.argsort(forest.score_samples(filled))[:top]]


def profile(X: pd.DataFrame, y: np.ndarray, schema: Schema, ptype: ProblemType,
            classes: list | None, seed: int = 0) -> dict[str, Any]:
    """The whole analysis, JSON-ready."""
    Xs, ys = _sample(X, y, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = column_stats(Xs, schema)
        found = insights_for(Xs, ys, schema, ptype, classes, stats, seed)
        power = prediction_power(Xs, ys, schema, ptype, seed)
        numeric = [c for c in schema.columns(ColumnKind.NUMERIC)]
        corr = Xs[numeric].apply(pd.to_numeric, errors="coerce").corr().round(4) \
            if len(numeric) > 1 else pd.DataFrame()
    suspicious = {c for i in found for c in i.columns}
    stats.sort(key=lambda s: (s["column"] not in suspicious, -s["missing_fraction"]))
    target = ({"class_counts": dict(zip(map(str, classes or []),
                                        np.bincount(y, minlength=len(classes or [])).tolist(),
                                        strict=True))}
              if ptype.is_classification else
              {"mean": float(np.mean(y)), "std": float(np.std(y)), "min": float(np.min(y)),
               "max": float(np.max(y)), "quantiles": np.quantile(y, [.05, .25, .5, .75, .95]
                                                                 ).tolist()})
    return {
        "rows": int(len(X)), "sampled_rows": int(len(Xs)), "columns": int(X.shape[1]),
        "problem_type": ptype.value, "kinds": schema.to_dict(),
        "insights": [asdict(i) for i in found], "target": target,
        "prediction_power": power, "correlation": {
            "columns": list(corr.columns), "matrix": corr.fillna(0).to_numpy().tolist()},
        "anomalous_rows": anomalies(Xs, schema, seed), "column_stats": stats,
        "target_by_column": target_groups(Xs, ys, schema, ptype, classes, power),
    }
