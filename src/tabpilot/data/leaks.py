"""Target leak detection: columns that give the answer away.

A leak is a column filled in after the outcome (a closing date, a follow-up note, a refund
amount) or derived from the target itself. It predicts the target too well to be true, and
a model trained on it fails in production. Four rules, on the profile's seeded sample:

1. near-perfect: the column alone predicts the target almost exactly: balanced agreement
   with the classes, AUC, |Pearson| or |Spearman|, rank agreement, or a held-out
   information share (data/leak_measures.py measures them, held out where they could
   memorise);
2. dominant: the column's information share is large and far above every other column's;
3. a transformed copy: a scaled or monotone transform of a numeric target, the target cut
   into buckets, or the class label's text inside a string column;
4. identifiers whose order tracks the target (the table was sorted by the outcome before
   the ids were given), and rows sorted by the target.

High severity: near-perfect and, besides, as good as a copy, or far ahead of the next
column (half its errors), or dominant; or the label's text. Medium: near-perfect with other
columns close behind (an easy problem looks like this too), dominant alone, or sorted ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.data.leak_measures import (
    MAX_CLASSES,
    MIN_ROWS,
    ColumnScore,
    Target,
    as_number,
    block_agreement,
    score_column,
)
from tabpilot.data.schema import ColumnKind, Schema
from tabpilot.tasks import ProblemType

# Rule 1: each measure, and the value from which a column is near-perfect. A copy with
# 5 % of its rows wrong sits at the edge. Clean tables stay below (bench/leaks.py), but
# for iris (petal length 0.96: medium, as petal width comes close): the best real columns
# reach a balanced agreement of 0.944 (womens_clothing_reviews: Rating), an AUC of 0.975
# (breast cancer: worst perimeter), a |correlation| of 0.964 (diamonds: x), a rank
# agreement of 0.20 (diamonds: x) and a bucket agreement of 0.57 (ames: Exter Qual).
NEAR_PERFECT = {
    "agreement": 0.95,  # balanced agreement with the classes
    "auc": 0.99,  # a column ranking the two classes
    "pearson": 0.98, "spearman": 0.98,  # |correlation| with a numeric target
    "spearman held out": 0.98,  # categories ordered by their held-out target mean
    "rank agreement": 0.9,  # rows whose ranks match the target's within 2 % of the rows
    "bucket agreement": 0.9,  # groups that cut the sorted target into consecutive ranges
    "information share": 0.95,  # held-out mutual information / target entropy
}
READS_AS = {  # what a near-perfect value of a measure means
    "pearson": "a scaled and shifted copy of the target",
    "spearman": "a monotone transform of the target (log, power, rank...)",
    "spearman held out": "the target in disguise (its values sort the target)",
    "rank agreement": "a copy of the target, or a monotone transform of it, with a few rows "
                      "wrong",
    "bucket agreement": "the target cut into buckets",
}
EXACT_SHARE = 0.2  # within this share of the threshold's error from perfect: a copy
UNIQUE_ERROR_RATIO = 2.0  # the next column errs at least this many times more
DOMINANT_POWER = 0.5  # rule 2: an information share of at least this ...
# ... and this many times the next column's. Clean tables: 1.3 at most, but for
# womens_clothing_reviews' Rating (5.7; flagged medium: it is given with the label)
DOMINANT_RATIO = 3.0
ORDER_TRACKS = 0.9  # rule 4: an id's order agrees with the target at least this well
ORDER_MEASURES = ("agreement", "auc", "spearman", "rank agreement", "order agreement")
LABEL_TEXT_COVERAGE = 0.5  # rule 3: the share of rows naming exactly one class label ...
LABEL_TEXT_AGREEMENT = 0.9  # ... and how often that label is the row's class
PREVIEW_ROWS = 500  # label text is looked for in this many rows before all of them
PLOT_GROUPS = 8
PLOT_POINTS = 300
ROW_ORDER = "(row order)"


@dataclass
class Leak:
    """One suspected leak: the column, how sure, and why in words and in numbers."""

    column: str
    severity: str  # high | medium | low
    rule: str  # near_perfect | transformed_copy | dominant | label_text | id_order | row_order
    message: str
    fix: str
    evidence: dict[str, Any] = field(default_factory=dict)


def _strength(s: ColumnScore, measure: str) -> float:
    """How far into its near-perfect zone a measure is: >= 0 near-perfect, 1 perfect."""
    limit = NEAR_PERFECT[measure]
    return (s.measures[measure] - limit) / (1 - limit)


def _copies(scores: list[ColumnScore]) -> list[Leak]:
    """Rules 1 to 3 on values: near-perfect, transformed-copy or dominant columns."""
    found = []
    for s in scores:
        others = [o for o in scores if o is not s]
        near = [m for m in s.measures if _strength(s, m) >= 0]
        next_power = max((o.power for o in others), default=0.0)
        dominant = s.power >= DOMINANT_POWER and s.power >= DOMINANT_RATIO * next_power
        if not (near or dominant):
            continue
        measure = max(near or s.measures, key=lambda m: _strength(s, m))
        value = s.measures[measure]
        next_value = max((o.measures.get(measure, 0.0) for o in others), default=0.0)
        exact = _strength(s, measure) >= 1 - EXACT_SHARE
        unique = (1 - value) * UNIQUE_ERROR_RATIO <= 1 - next_value
        high = bool(near) and (exact or unique or dominant)
        reads_as = READS_AS.get(measure) if near else None
        if not near:
            rule, how = "dominant", "predicts the target far better than any other column"
        elif reads_as:
            rule, how = "transformed_copy", f"looks like {reads_as}"
        else:
            rule, how = "near_perfect", "alone predicts the target almost perfectly"
        if near and not high:
            how += " (other columns come close: the problem may just be easy)"
        evidence: dict[str, Any] = {
            "rule": rule, "measure": measure, "score": round(value, 4),
            "threshold": NEAR_PERFECT[measure], "information_share": round(s.power, 4),
            "next_best_score": round(next_value, 4),
            "next_best_information_share": round(next_power, 4), "metrics": s.metrics}
        if reads_as:
            evidence["transform"] = reads_as
        found.append(Leak(
            s.column, "high" if high else "medium", rule,
            f"possible target leak: column {s.column!r} {how} ({measure} {value:.3f}, "
            f"information share {s.power:.2f}; the next column reaches {next_value:.3f} and "
            f"{next_power:.2f})", f"drop {s.column!r} unless its value is known when you "
            "predict", evidence))
    return found


def _label_patterns(classes: list | None) -> list[re.Pattern[str]]:
    """A whole-word pattern per class label, when every label is a word ('yes', 'True.')."""
    labels = [str(c).strip(" .") for c in classes or []]
    if not 2 <= len(labels) <= MAX_CLASSES or not all(re.search(r"[A-Za-z]", lab)
                                                      for lab in labels):
        return []
    return [re.compile(rf"(?<![A-Za-z0-9]){re.escape(lab)}(?![A-Za-z0-9])", re.IGNORECASE)
            for lab in labels]


def _label_hits(text: pd.Series, patterns: list[re.Pattern[str]], y: np.ndarray
                ) -> tuple[float, float]:
    """The share of rows naming exactly one label, and how often it is the row's class."""
    unique, inverse = np.unique(text.to_numpy(dtype=str), return_inverse=True)
    hits = np.array([[bool(p.search(u)) for p in patterns] for u in unique])[inverse]
    one = hits.sum(axis=1) == 1
    if not one.any():
        return 0.0, 0.0
    return float(one.mean()), float(np.mean(hits[one].argmax(axis=1) == y[one]))


def _label_text(X: pd.DataFrame, y: np.ndarray, schema: Schema, ptype: ProblemType,
                classes: list | None) -> list[Leak]:
    """Rule 3 on text: a string column that spells out the class label in most rows."""
    patterns = _label_patterns(classes) if ptype.is_classification else []
    leaks = []
    for col in schema.columns(ColumnKind.TEXT) + schema.columns(ColumnKind.CATEGORICAL):
        if not patterns:
            break
        text = X[col].astype("string").fillna("")
        if _label_hits(text.iloc[:PREVIEW_ROWS], patterns, y[:PREVIEW_ROWS])[0] < \
                LABEL_TEXT_COVERAGE * 0.8:
            continue  # most columns: the preview tells, without reading every row
        coverage, agreement = _label_hits(text, patterns, y)
        if coverage < LABEL_TEXT_COVERAGE or agreement < LABEL_TEXT_AGREEMENT:
            continue
        leaks.append(Leak(
            col, "high", "label_text",
            f"possible target leak: column {col!r} spells out the class label in "
            f"{coverage:.0%} of the rows, and that label is the row's class in {agreement:.1%}"
            " of them", f"drop {col!r} (or the part of it written after the outcome)",
            {"rule": "label_text", "measure": "label text agreement",
             "score": round(agreement, 4), "threshold": LABEL_TEXT_AGREEMENT,
             "coverage": round(coverage, 4), "labels": [str(c) for c in classes or []]}))
    return leaks


def _order(X: pd.DataFrame, schema: Schema, t: Target) -> list[Leak]:
    """Rule 4: ids (or the rows) in an order that tracks the target."""
    candidates: list[tuple[str, np.ndarray]] = [(ROW_ORDER, np.arange(len(X), dtype=float))]
    for col in schema.columns(ColumnKind.ID):
        values = X[col]
        order = as_number(values, ColumnKind.ID)
        # ids have a value per row; a feature the user excluded (also kind ID) need not
        if order is not None and values.nunique() >= 0.9 * values.notna().sum():
            candidates.append((col, order))
    found = []
    for col, order in candidates:
        if (~np.isnan(order)).sum() < MIN_ROWS:
            continue
        s = score_column(col, pd.Series(order), ColumnKind.NUMERIC, t)
        ok = ~np.isnan(order)
        if t.ptype.is_classification:  # the rows of each class in one run of ids
            s.measures["order agreement"] = block_agreement(order[ok], t.codes[ok], t.seed)
        measure = max((m for m in ORDER_MEASURES if m in s.measures), key=s.measures.__getitem__)
        value = s.measures[measure]
        if value < ORDER_TRACKS:
            continue
        how = f"{measure} {value:.3f} between their order and the target"
        evidence = {"rule": "row_order" if col == ROW_ORDER else "id_order",
                    "measure": measure, "score": round(value, 4), "threshold": ORDER_TRACKS,
                    "metrics": s.metrics}
        if col == ROW_ORDER:  # harmless to the job, whose splits shuffle the rows
            found.append(Leak(col, "low", "row_order", f"the rows are sorted by the target "
                              f"({how}); a row number, or an id given in this order, would "
                              "leak it", "shuffle the rows before splitting them by position",
                              evidence))
        else:
            found.append(Leak(col, "medium", "id_order",
                              f"ids in {col!r} seem assigned after sorting by the outcome "
                              f"({how}); ids are not used as features, but a split by id or "
                              "by position would be unrepresentative", f"keep {col!r} out of "
                              "the features and check how the table was put together",
                              evidence))
    return found


def find_leaks(X: pd.DataFrame, y: np.ndarray, schema: Schema, ptype: ProblemType,
               classes: list | None = None, seed: int = 0) -> list[Leak]:
    """Suspected target leaks, most severe first, each with a plot of the column against
    the target in its evidence. X and y are the profile's sample (y: class numbers, or
    floats)."""
    if len(X) < MIN_ROWS or len(np.unique(y)) < 2:
        return []
    X = X.reset_index(drop=True)
    t = Target(y, ptype, seed)
    scores = [score_column(col, X[col], schema.kinds[col], t) for col in schema.features
              if col in X and X[col].notna().sum() >= MIN_ROWS]
    leaks = _copies(scores) + _order(X, schema, t)
    flagged = {leak.column for leak in leaks}
    leaks += [leak for leak in _label_text(X, y, schema, ptype, classes)
              if leak.column not in flagged]
    for leak in leaks:
        values = X[leak.column] if leak.column in X else pd.Series(np.arange(len(X)))
        kind = schema.kinds.get(leak.column, ColumnKind.NUMERIC)
        leak.evidence["plot"] = plot_data(values, as_number(values, kind), y, ptype, classes,
                                          seed)
    rank = {"high": 0, "medium": 1, "low": 2}
    return sorted(leaks, key=lambda leak: (rank[leak.severity], -leak.evidence["score"]))


# -- what a notebook plots: the column against the target ------------------------------------

def _ranges(values: np.ndarray, n: int) -> tuple[np.ndarray, list[str]]:
    """Quantile groups of numbers, named by their ranges (and 'missing')."""
    edges = np.unique(np.nanquantile(values, np.linspace(0, 1, n + 1)))
    inner = edges[1:-1]
    groups = np.where(np.isnan(values), len(inner) + 1,
                      np.searchsorted(inner, values, side="right"))
    names = [f"{lo:.4g} to {hi:.4g}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    return groups, names + ["missing"] * bool(np.isnan(values).any())


def _categories(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """The most frequent values (and 'other')."""
    text = values.astype("string").fillna("missing")
    top = [str(v) for v in text.value_counts().index[:PLOT_GROUPS]]
    codes = text.map({v: i for i, v in enumerate(top)}).fillna(len(top)).to_numpy(dtype=int)
    return codes, top + ["other"] * bool((codes == len(top)).any())


def plot_data(values: pd.Series, numeric: np.ndarray | None, y: np.ndarray,
              ptype: ProblemType, classes: list | None, seed: int = 0) -> dict[str, Any]:
    """JSON-ready: a sample of points (a number against a numeric target) or a crosstab of
    row counts (column groups by classes, or by target ranges)."""
    present = numeric[~np.isnan(numeric)] if numeric is not None else np.zeros(0)
    many = len(np.unique(present)) > PLOT_GROUPS
    if ptype is ProblemType.REGRESSION and many and numeric is not None:
        ok = np.flatnonzero(~np.isnan(numeric))
        pick = np.sort(np.random.default_rng(seed).choice(ok, min(PLOT_POINTS, len(ok)),
                                                          replace=False))
        return {"type": "scatter", "x": [float(f"{v:.4g}") for v in numeric[pick]],
                "y": [float(f"{v:.4g}") for v in np.asarray(y, dtype=float)[pick]]}
    rows, row_names = _ranges(numeric, PLOT_GROUPS) if many and numeric is not None else \
        _categories(values)
    if ptype is ProblemType.REGRESSION:
        cols, col_names = _ranges(np.asarray(y, dtype=float), 5)
    else:
        names = [str(c) for c in classes] if classes else \
            [str(c) for c in range(int(np.max(y)) + 1)]
        if len(names) <= 2 * PLOT_GROUPS:  # the classes in their order
            cols, col_names = np.asarray(y, dtype=int), names
        else:
            labels = np.array(names, dtype=object)[np.asarray(y, dtype=int)]
            cols, col_names = _categories(pd.Series(labels))
    counts = np.zeros((len(row_names), len(col_names)), dtype=int)
    np.add.at(counts, (rows, cols), 1)
    return {"type": "crosstab", "rows": row_names, "columns": col_names,
            "counts": counts.tolist()}
