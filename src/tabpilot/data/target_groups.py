"""The target per category and per numeric bin of the most predictive columns ("churn rate
by contract type"): what a data scientist looks at first to see *how* a column relates to
the target, where prediction power only says *how much*.

Classification: each group's share of each class (binary: of the positive class only).
Regression: each group's mean and quartiles. Numeric columns are cut at quantiles, so bins
hold similar row counts; categorical columns keep their most frequent values, the rest in
one "(other)" group; missing values are a group of their own. JSON-ready.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tabpilot.data.schema import ColumnKind, Schema
from tabpilot.tasks import ProblemType

TOP_COLUMNS = 8
MAX_GROUPS = 12  # categories shown; the rest make "(other)"
BINS = 8
MAX_CLASSES = 7  # multiclass shares shown; the rest make "(other classes)"
OTHER, MISSING = "(other)", "(missing)"


def _edge(v: float) -> str:
    return f"{v:.4g}"


def _groups(s: pd.Series, kind: ColumnKind) -> pd.Series | None:
    """Each row's group label (a string), in display order as the categories' order."""
    if kind is ColumnKind.NUMERIC:
        v = pd.to_numeric(s, errors="coerce")
        finite = v.dropna()
        if finite.nunique() <= BINS:  # few distinct values: one group each
            labels = v.map(lambda x: MISSING if pd.isna(x) else _edge(x))
            order = [_edge(x) for x in sorted(finite.unique())]
        else:
            edges = np.unique(np.quantile(finite, np.linspace(0, 1, BINS + 1)))
            cut = pd.cut(v, edges, include_lowest=True, duplicates="drop")
            # labelled by the edges themselves (pandas lowers the first one a little)
            names = [f"{_edge(a)} to {_edge(b)}" for a, b in zip(edges[:-1], edges[1:],
                                                                 strict=True)]
            labels = cut.cat.rename_categories(names).astype(object).where(cut.notna(), MISSING)
            order = names
    elif kind is ColumnKind.CATEGORICAL:
        text = s.astype("string")
        counts = text.value_counts()
        keep = list(counts.index[:MAX_GROUPS])
        labels = text.where(text.isin(keep), OTHER).astype(object).where(text.notna(), MISSING)
        order = keep + ([OTHER] if len(counts) > MAX_GROUPS else [])
    else:
        return None
    order += [MISSING] if (labels == MISSING).any() else []
    return pd.Series(pd.Categorical(labels, categories=order), index=s.index)


def _summary(y: np.ndarray, ptype: ProblemType, classes: list) -> dict[str, Any]:
    if ptype is ProblemType.REGRESSION:
        q25, median, q75 = np.quantile(y, [0.25, 0.5, 0.75])
        return {"mean": float(np.mean(y)), "q25": float(q25), "median": float(median),
                "q75": float(q75)}
    counts = np.bincount(y, minlength=len(classes)) / max(len(y), 1)
    if ptype is ProblemType.BINARY:
        return {str(classes[1]): float(counts[1])}
    shown = np.argsort(-counts, kind="stable")[:MAX_CLASSES]
    out = {str(classes[k]): float(counts[k]) for k in sorted(shown)}
    if len(classes) > MAX_CLASSES:
        out["(other classes)"] = float(1 - sum(out.values()))
    return out


def target_groups(X: pd.DataFrame, y: np.ndarray, schema: Schema, ptype: ProblemType,
                  classes: list | None, power: dict[str, float], top: int = TOP_COLUMNS
                  ) -> dict[str, Any]:
    """The target by group for the `top` numeric or categorical columns, most predictive
    (by `power`) first."""
    classes = list(classes or [])
    if ptype.is_classification and not classes:  # the codes stand in for the labels
        classes = [str(k) for k in range(int(np.max(y)) + 1 if len(y) else 0)]
    overall = _summary(y, ptype, classes)
    shown = [c for c in power if c in X.columns
             and schema.kinds.get(c) in (ColumnKind.NUMERIC, ColumnKind.CATEGORICAL)][:top]
    columns = []
    for col in shown:
        labels = _groups(X[col], schema.kinds[col])
        if labels is None:
            continue
        groups = []
        for name in labels.cat.categories:
            mask = (labels == name).to_numpy()
            if not mask.any():
                continue
            if ptype.is_classification:  # the classes the overall summary shows
                share = np.bincount(y[mask], minlength=len(classes)) / mask.sum()
                by_name = {str(c): float(share[k]) for k, c in enumerate(classes)}
                summary: dict[str, Any] = {"shares": {
                    k: by_name.get(k, float(1 - sum(by_name[c] for c in overall
                                                    if c in by_name)))
                    for k in overall}}
            else:
                summary = _summary(y[mask], ptype, classes)
            groups.append({"group": str(name), "rows": int(mask.sum()), **summary})
        columns.append({"column": str(col), "kind": schema.kinds[col].value,
                        "power": float(power[col]), "groups": groups})
    return {"problem_type": ptype.value, "overall": overall, "columns": columns}
