"""How well one column alone predicts the target: the measures behind data/leaks.py.

Every measure is 0..1, 1 being a perfect copy of the target. Grouped measures are held
out: each row is predicted from the other folds' rows of its group (its value, or its
quantile bin), and values seen once are pooled, so that an id-like column cannot look
perfect by memorising each row. Order measures (correlations, consecutive ranges) fit
nothing, so they need no folds. One sort per column serves all order measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabpilot.data.schema import ColumnKind
from tabpilot.tasks import ProblemType

FOLDS = 5
QUANTILE_BINS = 20
MAX_GROUPS = 32  # columns with at most this many values are grouped by value
TARGET_BINS = 10  # a numeric target is cut into quantiles for the information share
MAX_CLASSES = 50  # rarer classes are pooled
MIN_ROWS = 30
RANK_TOLERANCE = 0.02  # of the rows: ranks this close count as agreeing


@dataclass
class ColumnScore:
    """The measures of one column (those data/leaks.py judges) and all that was measured."""

    column: str
    measures: dict[str, float]
    metrics: dict[str, float]

    @property
    def power(self) -> float:
        return self.measures["information share"]


def ranks_and_order(values: np.ndarray, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, int]:
    """Average ranks (1..n) of values without NaN, their order with ties in random order,
    and how many distinct values there are: all from one sort."""
    n = len(values)
    shuffle = rng.permutation(n)
    order = shuffle[np.argsort(values[shuffle], kind="stable")]
    ordered = values[order]
    new = np.ones(n, dtype=bool)
    new[1:] = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    ranks = np.empty(n)
    ranks[order] = ((starts + ends + 1) / 2)[np.cumsum(new) - 1]
    return ranks, order, len(starts)


def as_number(values: pd.Series, kind: ColumnKind) -> np.ndarray | None:
    """The column as floats in its own order (numbers, booleans, dates, ids), or None."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(values) or kind is ColumnKind.DATETIME:
        unique = pd.Series(values.dropna().unique())
        stamps = pd.to_datetime(unique if pd.api.types.is_datetime64_any_dtype(unique)
                                else unique.astype(str), errors="coerce", format="mixed")
        numbers = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(float)
        numbers[stamps.isna().to_numpy()] = np.nan
        lookup = dict(zip(unique, numbers, strict=True))
        return values.map(lookup).to_numpy(dtype=float, na_value=np.nan)
    if kind is ColumnKind.ID:  # ids like 'C-0042': their digits; else their sorted order
        digits = values.astype("string").str.extract(r"(\d+)\D*$", expand=False)
        parsed = pd.to_numeric(digits, errors="coerce")
        if parsed.notna().mean() > 0.9:
            return parsed.to_numpy(dtype=float, na_value=np.nan)
        codes = pd.factorize(values, sort=True, use_na_sentinel=True)[0]
        return np.where(codes < 0, np.nan, codes).astype(float)
    return None


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-np.sum(p * np.log(p)))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return abs(float(np.corrcoef(a, b)[0, 1]))


def block_agreement(values: np.ndarray, groups: np.ndarray, seed: int = 0) -> float:
    """How well the rows, sorted by `values`, fall into one consecutive block per group,
    beyond chance (1: the rows were sorted by the groups, e.g. by the class)."""
    _, order, _ = ranks_and_order(values, np.random.default_rng(seed))
    position = np.empty(len(values), dtype=np.int64)
    position[order] = np.arange(len(values))
    return _bucket_agreement(np.unique(groups, return_inverse=True)[1], position)


def _auc(ranks: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC from the scores' ranks (ties averaged), either direction: 0.5..1."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.5
    auc = float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return max(auc, 1 - auc)


def _balanced_cut(ys: np.ndarray, k: int) -> float:
    """`ys`: classes of rows in the column's order. Balanced agreement of consecutive
    blocks, one per class in order of its mean place and as long as its count."""
    sizes = np.bincount(ys, minlength=k)
    present = sizes > 0
    place = np.bincount(ys, weights=np.arange(len(ys)), minlength=k)
    by_place = np.argsort(np.where(present, place / np.maximum(sizes, 1), np.inf),
                          kind="stable")
    expected = np.repeat(by_place, sizes[by_place])
    hits = np.bincount(ys[expected == ys], minlength=k)
    return float(np.mean(hits[present] / sizes[present]))


def _bucket_agreement(groups: np.ndarray, position: np.ndarray) -> float:
    """How well the column's groups, in order of their mean place in the target's order,
    cut the sorted target into consecutive ranges, beyond chance (1: a bucketed target).
    `position`: each row's place in the target's order."""
    sizes = np.bincount(groups)
    present = sizes > 0
    if not 2 <= present.sum() <= MAX_GROUPS:
        return 0.0
    mean_place = np.bincount(groups, weights=position) / np.maximum(sizes, 1)
    by_place = np.argsort(np.where(present, mean_place, np.inf), kind="stable")
    expected = np.repeat(by_place, sizes[by_place])
    in_order = np.empty(len(groups), dtype=np.int64)
    in_order[position] = groups
    agree = float(np.mean(in_order == expected))
    chance = float(np.sum((sizes / len(groups)) ** 2))
    return max(0.0, (agree - chance) / (1 - chance)) if chance < 1 else 0.0


def _rank_agreement(ra: np.ndarray, rb: np.ndarray) -> float:
    """The share of rows whose ranks in two columns are within RANK_TOLERANCE of the rows,
    either direction, beyond chance (1: a copy or a monotone transform, ties aside)."""
    n = len(ra)
    a, b = (ra - 0.5) / n, (rb - 0.5) / n
    agree = max(np.mean(np.abs(a - b) <= RANK_TOLERANCE),
                np.mean(np.abs(1 - a - b) <= RANK_TOLERANCE))
    chance = 2 * RANK_TOLERANCE - RANK_TOLERANCE**2
    return max(0.0, float(agree - chance) / (1 - chance))


class Target:
    """The target as the measures need it, with the folds every column shares."""

    def __init__(self, y: np.ndarray, ptype: ProblemType, seed: int = 0) -> None:
        self.ptype, self.seed, n = ptype, seed, len(y)
        rng = np.random.default_rng(seed)
        self.fold = rng.permutation(n) % FOLDS
        if ptype.is_classification:
            codes = np.unique(np.asarray(y), return_inverse=True)[1].astype(np.int64)
            counts = np.bincount(codes)
            if len(counts) > MAX_CLASSES:  # the largest classes, and the others pooled
                remap = np.full(len(counts), MAX_CLASSES - 1)
                keep = np.argsort(-counts, kind="stable")[: MAX_CLASSES - 1]
                remap[keep] = np.arange(len(keep))
                codes = remap[codes]
            self.y = codes.astype(float)
        else:
            self.y = np.asarray(y, dtype=float)
        self.ranks, order, _ = ranks_and_order(self.y, rng)
        self.position = np.empty(n, dtype=np.int64)
        self.position[order] = np.arange(n)
        if not ptype.is_classification:  # quantile bins for the information share
            codes = np.minimum(((self.ranks - 1) * TARGET_BINS / n).astype(np.int64),
                               TARGET_BINS - 1)
            codes = np.unique(codes, return_inverse=True)[1].astype(np.int64)
        self.codes = codes
        self.k = int(codes.max()) + 1
        self.sizes = np.bincount(codes, minlength=self.k)
        self.entropy = _entropy(self.sizes)

    def held_out_proba(self, groups: np.ndarray) -> np.ndarray:
        """Each row's class (or target bin) probabilities from the other folds' rows of its
        group, smoothed towards the overall shares."""
        n_groups, k = int(groups.max()) + 1, self.k
        total = np.bincount(groups * k + self.codes, minlength=n_groups * k
                            ).reshape(n_groups, k)
        per_fold = np.bincount((self.fold * n_groups + groups) * k + self.codes,
                               minlength=FOLDS * n_groups * k).reshape(FOLDS, n_groups, k)
        seen = (total[groups] - per_fold[self.fold, groups]).astype(float)
        prior = self.sizes / len(self.codes)
        return (seen + prior) / (seen.sum(axis=1, keepdims=True) + 1.0)

    def held_out_mean(self, groups: np.ndarray) -> np.ndarray:
        n_groups = int(groups.max()) + 1
        key = self.fold * n_groups + groups
        sums = np.bincount(groups, self.y, n_groups)[groups] - np.bincount(
            key, self.y, FOLDS * n_groups)[key]
        counts = np.bincount(groups, minlength=n_groups)[groups] - np.bincount(
            key, minlength=FOLDS * n_groups)[key]
        return (sums + self.y.mean()) / (counts + 1.0)

    def held_out(self, groups: np.ndarray) -> dict[str, float]:
        """Information share (and balanced agreement for classes) of held-out predictions."""
        proba = self.held_out_proba(groups)
        y = self.codes
        loss = float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, 1))))
        out = {"information_share": max(0.0, 1 - loss / self.entropy) if self.entropy else 0.0}
        if self.ptype.is_classification:
            present = self.sizes > 0
            pred = (proba / np.maximum(self.sizes, 1)).argmax(axis=1)  # the balanced decision
            hits = np.bincount(y[pred == y], minlength=self.k)
            out["agreement"] = float(np.mean(hits[present] / self.sizes[present]))
            if self.k == 2:
                ranks, _, _ = ranks_and_order(proba[:, 1], np.random.default_rng(self.seed))
                out["auc"] = _auc(ranks, y == 1)
        return out


def _groups(values: pd.Series, missing: np.ndarray, ranks: np.ndarray | None, distinct: int
            ) -> np.ndarray:
    """Integer groups: the values themselves if few, else quantile bins (numbers, from the
    ranks of the present values) or the values with those seen once pooled (strings);
    missing values form a group of their own."""
    codes = np.zeros(len(values), dtype=np.int64)
    if ranks is not None and distinct > MAX_GROUPS:
        bins = ((ranks - 1) * QUANTILE_BINS / len(ranks)).astype(np.int64)
        codes[~missing] = np.minimum(bins, QUANTILE_BINS - 1)
    else:
        codes = pd.factorize(values, use_na_sentinel=True)[0].astype(np.int64)
        if (codes >= 0).any():
            counts = np.bincount(codes[codes >= 0])
            codes = np.where((codes >= 0) & (counts[np.maximum(codes, 0)] == 1), len(counts),
                             codes)
    return np.where(missing, codes.max(initial=0) + 1, codes)


def score_column(name: str, values: pd.Series, kind: ColumnKind, t: Target) -> ColumnScore:
    """The column's measures: information share always; balanced agreement and AUC for
    classes; |Pearson|, |Spearman|, rank and bucket agreement for a numeric target."""
    numeric = as_number(values, kind)
    missing = values.isna().to_numpy() if numeric is None else np.isnan(numeric)
    ok = ~missing
    ranks = order = None
    distinct = 0
    if numeric is not None and ok.sum() >= MIN_ROWS:
        ranks, order, distinct = ranks_and_order(numeric[ok], np.random.default_rng(t.seed))
    else:
        numeric = None
    groups = _groups(values, missing, ranks, distinct)
    metrics = t.held_out(groups)
    if numeric is not None and ranks is not None and order is not None:
        if t.ptype is ProblemType.REGRESSION:
            y_ok = t.y[ok]
            y_ranks = t.ranks if ok.all() else ranks_and_order(
                y_ok, np.random.default_rng(t.seed))[0]
            metrics["pearson"] = _corr(numeric[ok], y_ok)
            metrics["spearman"] = _corr(ranks, y_ranks)
            metrics["rank_agreement"] = _rank_agreement(ranks, y_ranks)
        elif ok.mean() >= 0.9:  # the classes in consecutive ranges of the values
            metrics["interval_agreement"] = _balanced_cut(t.codes[ok][order], t.k)
        if t.k == 2 and t.ptype.is_classification:  # missing values ranked first, or last
            positive = t.codes == 1
            n_miss = int(missing.sum())
            first = np.where(ok, 0.0, (n_miss + 1) / 2)
            first[ok] = ranks + n_miss
            last = np.where(ok, 0.0, ok.sum() + (n_miss + 1) / 2)
            last[ok] = ranks
            metrics["auc_values"] = max(_auc(first, positive), _auc(last, positive))
    elif t.ptype is ProblemType.REGRESSION:  # groups ordered by their held-out target means
        means = t.held_out_mean(groups)
        metrics["spearman_held_out"] = _corr(
            ranks_and_order(means, np.random.default_rng(t.seed))[0], t.ranks)
    if t.ptype is ProblemType.REGRESSION:
        metrics["bucket_agreement"] = _bucket_agreement(groups, t.position)
        measures = {m.replace("_", " "): metrics[m] for m in (
            "information_share", "pearson", "spearman", "rank_agreement", "spearman_held_out",
            "bucket_agreement") if m in metrics}
    else:
        measures = {"information share": metrics["information_share"],
                    "agreement": max(metrics["agreement"],
                                     metrics.get("interval_agreement", 0.0))}
        if t.k == 2:
            measures["auc"] = max(metrics["auc"], metrics.get("auc_values", 0.5))
    return ColumnScore(name, {m: float(v) for m, v in measures.items()},
                       {m: round(float(v), 4) for m, v in metrics.items()})
