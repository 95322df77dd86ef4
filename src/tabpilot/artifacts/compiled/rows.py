"""Raw rows -> the encoder's float matrix, without the per-column numpy set-up.

A one-row request spends most of its time in the encoder's per-column numpy calls,
not in the trees. For the encodings the tree families use (numeric columns as they are,
or imputed and standardised with missing indicators; categories as integer codes, NaN
or -1 when missing or unseen), and the linear and MLP families' one-hot blocks (with each
label's frequency), a few rows are encoded here value by value with the very
functions and float64 operations the encoder applies to small batches, so the result is
the same matrix; a date column gives its parts (features/columns.date_row). Text columns
take the encoder's own vectorizers, densified (a TF-IDF one through features/tfidf.py: the
same vectors without scikit-learn's input checks). Any other encoding goes to the encoder.

Members of an ensemble with equal encoders share one RowEncoder; within one request
(`predictor.once_a_request`) it encodes a frame once for all of them. Encoders that differ
elsewhere (another categorical encoding) often hold equal text vectorizers: RowEncoders
made with one `texts` registry share a `TextColumn` per column and vectorizer, which
vectorizes a request's column once for all of them.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.artifacts.predictor import once_a_request
from tabpilot.features.columns import (
    DATE_PARTS,
    SMALL,
    as_text,
    category_string,
    date_row,
    scalar_float,
)
from tabpilot.features.encoder import TabularEncoder
from tabpilot.features.tfidf import tfidf_transform


class TextColumn:
    """One text column's fitted vectorizer, densified; shared by the RowEncoders whose
    vectorizers for that column pickle equal, so that a request is vectorized once."""

    def __init__(self, column: str, vectorizer: Any) -> None:
        self.column = column
        self.vectorizer = vectorizer
        self.width = len(vectorizer.vocabulary_)

    def dense(self, X: pd.DataFrame, values: np.ndarray) -> np.ndarray:
        """The dense vectors of `values`, column `self.column` of the request `X`."""
        return once_a_request(self, X, self.width, lambda _: tfidf_transform(
            self.vectorizer, as_text(values)).toarray())


class RowEncoder:
    def __init__(self, encoder: TabularEncoder,
                 texts: dict[tuple[str, bytes], TextColumn] | None = None) -> None:
        self.encoder = encoder
        self.numeric = list(encoder.numeric)
        self.categorical = list(encoder.categorical)
        self.text = list(encoder.text)
        self.dates = list(encoder.datetime)
        self.inputs = self.numeric + self.dates + self.categorical + self.text
        self.direct = encoder.categorical_encoding in ("codes", "ordinal", "onehot")
        self._onehot = encoder.categorical_encoding == "onehot"
        self._missing = -1.0 if encoder.categorical_encoding == "ordinal" else math.nan
        self._scale = bool(encoder.scale) and bool(self.numeric or self.dates)
        self._indicators: list[int] = []
        if self._scale:  # plain floats: the same IEEE operations as the encoder's arrays
            self._medians = [float(v) for v in encoder.medians_]
            self._means = [float(v) for v in encoder.means_]
            self._stds = [float(v) for v in encoder.stds_]
            self._indicators = [int(i) for i in encoder.missing_cols_]
        # a category is one code, or one-hot (its categories and its frequency)
        self._sizes = [len(encoder.categories_[c]) for c in self.categorical] \
            if self._onehot else []
        self._frequencies = [encoder.frequencies_[c] for c in self.categorical] \
            if self._onehot else []
        self._width = (len(self.numeric) + len(DATE_PARTS) * len(self.dates)
                       + len(self._indicators)
                       + (sum(self._sizes) + len(self._sizes) if self._onehot
                          else len(self.categorical)))  # before the text columns
        self._lookups = [encoder._lookup[c] for c in self.categorical] if self.direct else []
        self._positions: dict[tuple, tuple[list[int], ...] | None] = {}
        self._texts = [self._text_column(c, texts) for c in self.text] if self.direct else []

    def _text_column(self, column: str, texts: dict[tuple[str, bytes], TextColumn] | None
                     ) -> TextColumn:
        vectorizer = self.encoder.vectorizers_[column]
        if texts is None:
            return TextColumn(column, vectorizer)
        key = (column, pickle.dumps(vectorizer, protocol=pickle.HIGHEST_PROTOCOL))
        if key not in texts:
            texts[key] = TextColumn(column, vectorizer)
        return texts[key]

    def encode(self, X: pd.DataFrame) -> np.ndarray:
        """(rows, features) float64 in C order, equal to the encoder's dense output."""
        return once_a_request(self, X, self.encoder.n_features_out_, self._encode)

    def _encode(self, X: pd.DataFrame) -> np.ndarray:
        if self.direct and len(X) <= SMALL:
            positions = self._columns(X)
            if positions is not None:
                return self._encode_small(X, *positions)
        out = self.encoder.transform(X)
        if hasattr(out, "toarray"):
            out = out.toarray()
        return np.ascontiguousarray(out, dtype=np.float64)

    def _columns(self, X: pd.DataFrame) -> tuple[list[int], ...] | None:
        key = tuple(X.columns)
        if key not in self._positions:
            if len(self._positions) >= 64:  # clients sending ever new column sets
                self._positions.clear()
            index = {}
            for i, c in enumerate(key):  # the first of duplicated names, like columns_of
                index.setdefault(c, i)
            if all(c in index for c in self.inputs):
                self._positions[key] = ([index[c] for c in self.numeric],
                                        [index[c] for c in self.dates],
                                        [index[c] for c in self.categorical],
                                        [index[c] for c in self.text])
            else:
                self._positions[key] = None  # the encoder raises its own error
        return self._positions[key]

    def _encode_small(self, X: pd.DataFrame, numeric: list[int], dates: list[int],
                      categorical: list[int], text: list[int]) -> np.ndarray:
        matrix = X.to_numpy(dtype=object)
        rows = []
        missing = self._missing
        for row in matrix:
            values = [scalar_float(row[p]) for p in numeric]
            for p in dates:
                values.extend(date_row(row[p]))
            if self._scale:
                values = self._scaled(values)
            if self._onehot:
                self._append_onehot(values, row, categorical)
            else:
                for p, lookup in zip(categorical, self._lookups, strict=True):
                    code = lookup.get(category_string(row[p]), -1)
                    values.append(missing if code < 0 else float(code))
            rows.append(values)
        out = np.array(rows, dtype=np.float64).reshape(len(matrix), self._width)
        if not text:
            return out
        parts = [column.dense(X, matrix[:, p]) for column, p in zip(self._texts, text, strict=True)]
        return np.ascontiguousarray(np.hstack([out, *parts]), dtype=np.float64)

    def _append_onehot(self, values: list[float], row: np.ndarray, categorical: list[int]
                       ) -> None:
        """Each category as the encoder's one-hot block (all zeros when missing or unseen)
        and the label's training frequency."""
        for p, lookup, size, frequency in zip(categorical, self._lookups, self._sizes,
                                              self._frequencies, strict=True):
            label = category_string(row[p])
            block = [0.0] * size
            code = lookup.get(label, -1)
            if code >= 0:
                block[code] = 1.0
            values.extend(block)
            values.append(float(frequency.get(label, 0.0)))

    def _scaled(self, values: list[float]) -> list[float]:
        """Impute with the median, standardise, then the missing indicators."""
        scaled = [((self._medians[i] if math.isnan(v) else v) - self._means[i]) / self._stds[i]
                  for i, v in enumerate(values)]
        return scaled + [1.0 if math.isnan(values[i]) else 0.0 for i in self._indicators]
