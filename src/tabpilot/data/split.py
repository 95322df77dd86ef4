"""Validation splits: holdout or k-fold, stratified for classification."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

CV_MAX_ROWS = 10_000  # below this many rows, k-fold cross-validation instead of a holdout
CV_FOLDS = 5
# a holdout's rows when the request names no fraction (holdout_fraction): AutoGluon's rule
HOLDOUT_ROWS, SMALL_HOLDOUT_ROWS = 2500.0, 500.0


def holdout_fraction(n: int, given: float | None = None) -> float:
    """The holdout's share of `n` rows: `given` (the request's), else AutoGluon's default
    (`default_holdout_frac`), not fitted to any table. 2,500 rows rank candidates and
    weigh an ensemble well; every row beyond them is worth more to the models: a tenth of
    a table of 10,000-25,000 rows, 2,500 rows of a larger one (a hundredth at least), a
    fifth to a tenth of one under 5,000 (a holdout asked for with n_folds=1)."""
    if given is not None:
        return given
    if n < 5000:
        return max(0.1, min(0.2, SMALL_HOLDOUT_ROWS / max(n, 1)))
    return max(0.01, min(0.1, HOLDOUT_ROWS / n))


@dataclass
class Split:
    """Row indices of each fold's training and validation part.

    A holdout is one fold; so is a separate validation table, appended after the
    training rows.
    """

    folds: list[tuple[np.ndarray, np.ndarray]]
    kind: str  # "holdout" | "kfold" | "validation-file"

    @property
    def is_cv(self) -> bool:
        return self.kind == "kfold"

    @property
    def holdout_share(self) -> float:
        """The validation rows' share of all rows (a k-fold split: one fold's)."""
        train, valid = self.folds[0]
        return len(valid) / max(len(train) + len(valid), 1)

    def validation_rows(self) -> np.ndarray:
        """Every validation row, fold after fold: the order of all saved validation scores."""
        return np.concatenate([va for _, va in self.folds])

    def training_rows(self) -> np.ndarray:
        """Rows models may learn from during the search: the folds' training parts (a
        refit's: `refit_rows`).

        A separate validation table's rows are never training rows.
        """
        return np.unique(np.concatenate([tr for tr, _ in self.folds]))

    def refit_rows(self) -> np.ndarray:
        """The rows a model refit on every training row learns from: the training part,
        then a holdout's rows, the order in which the trials' encoded matrix holds them.

        Its encoder stays the one fitted on the training part (`training_rows`): a refit
        encodes a row as its parent and the job's other models do, so an ensemble of refits
        and models trained without the holdout shares their encoders rather than encoding
        each row once more (womens_clothing_reviews at 300 s: an ensemble answered one row
        in 1.6 ms, the same with three members refit and their text vectorizers fitted
        anew, in 2.7 ms). The holdout's rows are encoded as new rows are.
        """
        rows = self.training_rows()
        if self.kind != "holdout":
            return rows  # every row a model may learn from is a training row already
        return np.concatenate([rows, *[va for _, va in self.folds]])


def make_split(y: np.ndarray, stratify: bool, validation_fraction: float | None = None,
               n_folds: int | None = None, seed: int = 0, n_valid_rows: int | None = None
               ) -> Split:
    """Choose and build the split; k-fold for small data unless `n_folds` says otherwise.
    A holdout takes `validation_fraction` of the rows, by default `holdout_fraction`'s."""
    n = len(y)
    if n_valid_rows is not None:  # the validation table's rows follow the training rows
        return Split([(np.arange(n - n_valid_rows), np.arange(n - n_valid_rows, n))],
                     "validation-file")
    if n_folds is None:
        n_folds = CV_FOLDS if n < CV_MAX_ROWS else 1
    if n_folds > 1:
        min_class = np.min(np.bincount(y)) if stratify else n
        if stratify and min_class >= n_folds:
            splitter = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
        else:
            splitter = KFold(n_folds, shuffle=True, random_state=seed)
        folds = [(tr, va) for tr, va in splitter.split(np.zeros(n), y)]
        return Split(folds, "kfold")
    strat = y if stratify and np.min(np.bincount(y)) >= 2 else None
    train, valid = train_test_split(np.arange(n), test_size=holdout_fraction(n, validation_fraction),
                                    random_state=seed, stratify=strat)
    return Split([(np.sort(train), np.sort(valid))], "holdout")


def split_words(split: Split, why: str, fraction_given: bool) -> str:
    """A job's split in words, with why it was chosen (`why`) and how big its holdout is:
    "a holdout of 2,500 rows, 5.1% of 48,842 (48,842 rows, 10,000 or more; its size
    AutoGluon's rule)"."""
    if split.kind == "validation-file":
        return f"the validation table's {len(split.folds[0][1]):,} rows ({why})"
    if split.is_cv:
        return f"{len(split.folds)}-fold cross-validation ({why})"
    valid = len(split.folds[0][1])
    size = "given" if fraction_given else "AutoGluon's rule"
    return (f"a holdout of {valid:,} rows, {split.holdout_share:.1%} of "
            f"{valid + len(split.folds[0][0]):,} ({why}; its size {size})")


def subsample(rows: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    """At most `cap` of `rows` drawn without replacement, in ascending order; all of them
    when `cap` is None or not smaller. The same seed gives the same rows."""
    if cap is None or len(rows) <= cap:
        return rows
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(rows, size=cap, replace=False))
