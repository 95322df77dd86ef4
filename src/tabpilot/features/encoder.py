"""TabularEncoder: raw table -> numeric matrix, the one preprocessing step of every pipeline.

It follows the scikit-learn estimator contract (parameters stored in __init__, learned
state in attributes ending in `_`) and works column by column on numpy arrays, so that a
one-row prediction costs microseconds rather than a pandas round trip.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer

from tabpilot.features.columns import (
    DATE_PARTS,
    SMALL,
    as_category_strings,
    as_float,
    as_text,
    columns_of,
    date_parts,
)
from tabpilot.features.tfidf import tfidf_transform


class TabularEncoder(TransformerMixin, BaseEstimator):
    """Encode numeric, categorical, datetime and text columns into one matrix.

    categorical_encoding:
      "codes"   integer codes as floats, NaN for missing or unseen (native-categorical GBMs)
      "ordinal" codes by frequency rank, -1 for missing or unseen (random forests)
      "onehot"  one column per frequent category plus a frequency column (linear, MLP)
    scale: impute numeric columns with the median, add missing indicators, standardise.
    """

    def __init__(self, numeric: Sequence[str] = (), categorical: Sequence[str] = (),
                 datetime: Sequence[str] = (), text: Sequence[str] = (),
                 categorical_encoding: str = "codes", scale: bool = False,
                 max_categories: int = 256, onehot_max_categories: int = 30,
                 text_max_features: int = 2000) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.datetime = datetime
        self.text = text
        self.categorical_encoding = categorical_encoding
        self.scale = scale
        self.max_categories = max_categories
        self.onehot_max_categories = onehot_max_categories
        self.text_max_features = text_max_features

    # -- fitting -----------------------------------------------------------------------
    def _inputs(self) -> list[str]:
        return [*self.numeric, *self.categorical, *self.datetime, *self.text]

    def fit(self, X: pd.DataFrame, y=None) -> TabularEncoder:
        self.categories_: dict[str, list[str]] = {}
        self.frequencies_: dict[str, dict[str, float]] = {}
        cols = columns_of(X, self._inputs())
        for col in self.categorical:
            counts = pd.Series(as_category_strings(cols[col])).value_counts(dropna=True)
            limit = (self.onehot_max_categories if self.categorical_encoding == "onehot"
                     else self.max_categories)
            self.categories_[col] = [str(c) for c in counts.index[:limit]]
            self.frequencies_[col] = (counts / max(len(X), 1)).astype(float).to_dict()
        self._build_lookups()
        self.medians_ = self._medians(cols)
        self.missing_cols_ = np.zeros(0, dtype=int)
        # the numbers as one matrix only when scaling needs it (means and deviations)
        dense = self._dense_raw(cols, len(X)) if self.scale else np.zeros((len(X), 0))
        if self.scale:
            self.missing_cols_ = np.flatnonzero(np.isnan(dense).any(axis=0))
        if self.scale and dense.shape[1]:
            filled = np.where(np.isnan(dense), self.medians_, dense)
            self.means_ = filled.mean(axis=0)
            std = filled.std(axis=0)
            self.stds_ = np.where(std > 0, std, 1.0)
        self.vectorizers_ = {}
        for col in self.text:
            vec = TfidfVectorizer(max_features=self.text_max_features, ngram_range=(1, 2),
                                  min_df=2, sublinear_tf=True, dtype=np.float32)
            try:
                vec.fit(as_text(cols[col]))
            except ValueError:  # empty vocabulary: too few documents
                vec = TfidfVectorizer(max_features=self.text_max_features, dtype=np.float32)
                vec.fit(np.append(as_text(cols[col]), "empty"))
            self.vectorizers_[col] = vec
        self.n_features_out_ = len(self.get_feature_names_out())
        return self

    def _medians(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        """Median of each numeric and date-part column (0 where it has none), a column at
        a time: no float64 copy of every number at once, and the same values."""
        parts = [as_float(cols[c])[:, None] for c in self.numeric]
        medians = [np.nanmedian(np.where(np.isfinite(v), v, np.nan))
                   for part in [*parts, *(date_parts(cols[c]) for c in self.datetime)]
                   for v in part.T]
        return np.nan_to_num(np.array(medians, dtype=np.float64))

    def _build_lookups(self) -> None:
        self._lookup = {c: {v: i for i, v in enumerate(cats)} for c, cats in self.categories_.items()}
        self._index = {c: pd.Index(cats) for c, cats in self.categories_.items()}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if "categories_" in state:
            self._build_lookups()

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_lookup", "_index")}

    # -- transforming ------------------------------------------------------------------
    def _codes(self, values: np.ndarray, col: str) -> np.ndarray:
        """Category index per row of labels, -1 for missing or unseen."""
        if len(values) <= SMALL:
            lookup = self._lookup[col]
            return np.fromiter((lookup.get(v, -1) for v in values), dtype=np.int64,
                               count=len(values))
        return self._index[col].get_indexer(values.astype(object))

    def _raw_codes(self, values: np.ndarray, col: str) -> np.ndarray:
        """Category index per row of raw values: each distinct text is labelled once."""
        if len(values) > SMALL and pd.api.types.infer_dtype(values, skipna=True) == "string":
            rows, distinct = pd.factorize(values)  # -1 where missing
            codes = self._codes(as_category_strings(np.asarray(distinct, dtype=object)), col)
            return np.where(rows < 0, -1, codes[rows])
        return self._codes(as_category_strings(values), col)

    def _dense_raw(self, cols: dict[str, np.ndarray], n: int) -> np.ndarray:
        """Numeric and date-part columns, NaN where missing (before any scaling)."""
        parts = [as_float(cols[c])[:, None] for c in self.numeric]
        parts += [date_parts(cols[c]) for c in self.datetime]
        if not parts:
            return np.zeros((n, 0))
        return np.hstack(parts)

    def transform(self, X: pd.DataFrame):
        cols = columns_of(X, self._inputs())
        n = len(X)
        # every block is written straight into one matrix: no per-block copies to stack
        out = np.empty((n, self._dense_width()), dtype=np.float64)
        at = self._fill_numbers(out, cols, n)
        for col in self.categorical:
            at = self._fill_category(out, at, cols[col], col)
        if not self.text:
            return out
        texts = [tfidf_transform(self.vectorizers_[c], as_text(cols[c])) for c in self.text]
        return sp.hstack([sp.csr_matrix(out)] + texts, format="csr")

    def _dense_width(self) -> int:
        width = len(self.numeric) + len(DATE_PARTS) * len(self.datetime)
        if self.scale and width:
            width += len(self.missing_cols_)
        for col in self.categorical:
            width += len(self.categories_[col]) + 1 if self.categorical_encoding == "onehot" \
                else 1
        return width

    def _fill_numbers(self, out: np.ndarray, cols: dict[str, np.ndarray], n: int) -> int:
        """Numeric and date-part columns (imputed, standardised and with missing indicators
        when scaling) from column 0; returns the next free column."""
        at = 0
        missing_at = len(self.numeric) + len(DATE_PARTS) * len(self.datetime)
        flagged = {int(j): missing_at + i for i, j in enumerate(self.missing_cols_)} \
            if self.scale else {}
        parts = [as_float(cols[c])[:, None] for c in self.numeric]
        for part in [*parts, *(date_parts(cols[c]) for c in self.datetime)]:
            for k in range(part.shape[1]):
                values, j = part[:, k], at + k
                if self.scale:
                    missing = np.isnan(values)
                    filled = np.where(missing, self.medians_[j], values)
                    out[:, j] = (filled - self.means_[j]) / self.stds_[j]
                    if j in flagged:
                        out[:, flagged[j]] = missing
                else:
                    out[:, j] = values
            at += part.shape[1]
        return at + len(flagged)

    def _fill_category(self, out: np.ndarray, at: int, values: np.ndarray, col: str) -> int:
        """One categorical column's encoding from column `at`; returns the next free column."""
        if self.categorical_encoding != "onehot":
            codes = self._raw_codes(values, col)
            out[:, at] = np.where(codes < 0, np.nan, codes) \
                if self.categorical_encoding == "codes" else codes
            return at + 1
        labels = as_category_strings(values)
        codes = self._codes(labels, col)
        width = len(self.categories_[col])
        onehot = out[:, at: at + width]
        onehot[:] = 0.0
        seen = codes >= 0
        onehot[np.flatnonzero(seen), codes[seen]] = 1.0
        freq = self.frequencies_[col]
        out[:, at + width] = [freq.get(v, 0.0) for v in labels]
        return at + width + 1

    # -- introspection -----------------------------------------------------------------
    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        names = list(self.numeric)
        names += [f"{c}.{p}" for c in self.datetime for p in DATE_PARTS]
        if self.scale:
            dense_names = list(names)
            names += [f"{dense_names[i]}.missing" for i in getattr(self, "missing_cols_", [])]
        for col in self.categorical:
            if self.categorical_encoding == "onehot":
                names += [f"{col}={v}" for v in self.categories_[col]] + [f"{col}.frequency"]
            else:
                names.append(col)
        for col in self.text:
            names += [f"{col}:{t}" for t in self.vectorizers_[col].get_feature_names_out()]
        return np.array(names, dtype=object)

    @property
    def categorical_indices_(self) -> list[int]:
        """Output positions of the categorical code columns (codes / ordinal encodings)."""
        start = len(self.numeric) + len(DATE_PARTS) * len(self.datetime)
        if self.scale:
            start += len(self.missing_cols_)
        if self.categorical_encoding == "onehot":
            return []
        return list(range(start, start + len(self.categorical)))

    def source_columns(self) -> list[str]:
        """The input columns, one entry per output column (for raw-column importances)."""
        src = list(self.numeric) + [c for c in self.datetime for _ in DATE_PARTS]
        if self.scale:
            src += [src[i] for i in self.missing_cols_]
        for col in self.categorical:
            n = len(self.categories_[col]) + 1 if self.categorical_encoding == "onehot" else 1
            src += [col] * n
        for col in self.text:
            src += [col] * len(self.vectorizers_[col].get_feature_names_out())
        return src
