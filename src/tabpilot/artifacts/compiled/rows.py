"""Raw rows -> the encoder's float matrix, without the per-column numpy set-up.

A one-row request spends most of its time in the encoder's per-column numpy calls,
not in the trees. For the encoding the gradient-boosting families use (numeric columns
as they are, categories as integer codes, NaN when missing or unseen) a few rows are
encoded here value by value with the very functions the encoder applies to small
batches, so the result is the same matrix; anything else goes to the encoder.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tabpilot.features.columns import SMALL, category_string, scalar_float
from tabpilot.features.encoder import TabularEncoder


class RowEncoder:
    def __init__(self, encoder: TabularEncoder) -> None:
        self.encoder = encoder
        self.numeric = list(encoder.numeric)
        self.categorical = list(encoder.categorical)
        self.inputs = self.numeric + self.categorical
        self.direct = (encoder.categorical_encoding == "codes" and not encoder.scale
                       and not encoder.datetime and not encoder.text)
        self._lookups = [encoder._lookup[c] for c in self.categorical] if self.direct else []
        self._positions: dict[tuple, tuple[list[int], list[int]] | None] = {}

    def encode(self, X: pd.DataFrame) -> np.ndarray:
        """(rows, features) float64 in C order, equal to the encoder's dense output."""
        if self.direct and len(X) <= SMALL:
            positions = self._columns(X)
            if positions is not None:
                return self._encode_small(X, *positions)
        out = self.encoder.transform(X)
        if hasattr(out, "toarray"):
            out = out.toarray()
        return np.ascontiguousarray(out, dtype=np.float64)

    def _columns(self, X: pd.DataFrame) -> tuple[list[int], list[int]] | None:
        key = tuple(X.columns)
        if key not in self._positions:
            if len(self._positions) >= 64:  # clients sending ever new column sets
                self._positions.clear()
            index = {}
            for i, c in enumerate(key):  # the first of duplicated names, like columns_of
                index.setdefault(c, i)
            if all(c in index for c in self.inputs):
                self._positions[key] = ([index[c] for c in self.numeric],
                                        [index[c] for c in self.categorical])
            else:
                self._positions[key] = None  # the encoder raises its own error
        return self._positions[key]

    def _encode_small(self, X: pd.DataFrame, numeric: list[int], categorical: list[int]
                      ) -> np.ndarray:
        matrix = X.to_numpy(dtype=object)
        rows = []
        nan = math.nan
        for row in matrix:
            values = [scalar_float(row[p]) for p in numeric]
            for p, lookup in zip(categorical, self._lookups, strict=True):
                code = lookup.get(category_string(row[p]), -1)
                values.append(nan if code < 0 else float(code))
            rows.append(values)
        return np.array(rows, dtype=np.float64).reshape(len(matrix), len(self.inputs))
