"""Column kinds: numeric, categorical, text, datetime, id-like, constant.

Inferred from the data, overridable with Autopilot's FeatureSpecification file:
`{"FeatureAttributeNames": [...], "FeatureDataTypes": {"col": "numeric|categorical|text|datetime"}}`.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd

from tabpilot.errors import ConfigError

SAMPLE_ROWS = 20_000
# "id", "user_id", "ID-2", "customerID", "PassengerId", "uuid", "phone"; not "idle", "paid"
# (case-sensitive; also tried on the lower-cased name)
_ID_NAME = re.compile(r"(^|[^A-Za-z])(id|uuid|guid|key|phone)($|[^A-Za-z])|[A-Za-z](Id|ID)$"
                      r"|^(ID|Id)[A-Z_]|^(uuid|guid|phone)")


def _is_id_name(name: str) -> bool:
    return bool(_ID_NAME.search(name) or _ID_NAME.search(name.lower()))


class ColumnKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    TEXT = "text"
    DATETIME = "datetime"
    ID = "id"
    CONSTANT = "constant"

    @property
    def is_feature(self) -> bool:
        return self not in (ColumnKind.ID, ColumnKind.CONSTANT)


@dataclass
class Schema:
    """The kind of each input column, in the training table's column order."""

    kinds: dict[str, ColumnKind]
    overridden: list[str] = field(default_factory=list)

    def columns(self, kind: ColumnKind) -> list[str]:
        return [c for c, k in self.kinds.items() if k is kind]

    @property
    def features(self) -> list[str]:
        return [c for c, k in self.kinds.items() if k.is_feature]

    def to_dict(self) -> dict[str, str]:
        return {c: k.value for c, k in self.kinds.items()}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Schema:
        return cls({c: ColumnKind(k) for c, k in data.items()})


def infer_schema(df: pd.DataFrame, target: str | None = None,
                 feature_types: dict[str, str] | None = None,
                 feature_names: list[str] | None = None) -> Schema:
    """Infer each column's kind; `feature_types` forces kinds, `feature_names` limits the features."""
    sample = df.sample(SAMPLE_ROWS, random_state=0) if len(df) > SAMPLE_ROWS else df
    kinds: dict[str, ColumnKind] = {}
    for col in df.columns:
        if col == target:
            continue
        kinds[col] = _infer_column(sample[col], len(sample))
    overridden: list[str] = []
    for col, kind in (feature_types or {}).items():
        kinds[col] = ColumnKind(kind)
        overridden.append(col)
    if feature_names is not None:
        for col in kinds:
            if col not in feature_names and kinds[col].is_feature:
                kinds[col] = ColumnKind.ID  # excluded from the features by the user
    return Schema(kinds, overridden)


def _infer_column(s: pd.Series, n: int) -> ColumnKind:
    values = s.dropna()
    if values.empty:
        return ColumnKind.CONSTANT
    n_unique = values.nunique()
    if n_unique == 1:
        return ColumnKind.CONSTANT
    unique_ratio = n_unique / max(len(values), 1)
    name_is_id = _is_id_name(str(s.name))
    if pd.api.types.is_bool_dtype(s):
        return ColumnKind.CATEGORICAL
    if pd.api.types.is_datetime64_any_dtype(s):
        return ColumnKind.DATETIME
    if pd.api.types.is_numeric_dtype(s):
        integral = pd.api.types.is_integer_dtype(s) or bool(
            np.all(np.mod(values.to_numpy(dtype=float), 1) == 0)
        )
        if integral and unique_ratio > 0.99 and n > 50 and (name_is_id or _is_sequence(values)):
            return ColumnKind.ID
        return ColumnKind.NUMERIC
    text = values.astype(str)
    stripped = text.str.strip()
    filled = stripped[stripped != ""]  # blank strings are missing values, not non-numbers
    if filled.empty:
        return ColumnKind.CONSTANT
    numeric = pd.to_numeric(filled, errors="coerce")
    if numeric.notna().mean() >= 0.98 and not name_is_id:
        return ColumnKind.NUMERIC
    if _looks_like_datetime(text):
        return ColumnKind.DATETIME
    lengths = text.str.len()
    words = text.str.count(r"\s+") + 1
    if words.mean() >= 4 and unique_ratio > 0.3:
        return ColumnKind.TEXT
    if unique_ratio > 0.95 and n > 50 and (name_is_id or lengths.std() < 2 or words.max() <= 2):
        return ColumnKind.ID
    return ColumnKind.CATEGORICAL


def _is_sequence(values: pd.Series) -> bool:
    v = np.sort(values.to_numpy(dtype=float))
    return bool(len(v) > 1 and np.all(np.diff(v) == 1))


def _looks_like_datetime(text: pd.Series) -> bool:
    head = text.head(200)
    if not head.str.contains(r"\d{1,4}[-/:.]\d{1,2}", regex=True).mean() > 0.9:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(head, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() > 0.9)


def load_feature_specification(uri: str | Path) -> tuple[list[str] | None, dict[str, str]]:
    """Read an Autopilot FeatureSpecification JSON file."""
    try:
        with fsspec.open(str(uri), "r") as f:
            spec = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"feature types file {uri} does not exist; check the path") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"feature types file {uri} is not valid JSON: {exc.msg} "
                          f"(line {exc.lineno})") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"feature types file {uri} must hold a JSON object")
    names = spec.get("FeatureAttributeNames")
    types = spec.get("FeatureDataTypes", {}) or {}
    allowed = {"numeric", "categorical", "text", "datetime"}
    for col, kind in types.items():
        if str(kind).lower() not in allowed:
            raise ConfigError(
                f"feature types file {uri}: column {col!r} has type {kind!r}; "
                f"use one of: {', '.join(sorted(allowed))}"
            )
    return names, {c: str(k).lower() for c, k in types.items()}


def check_feature_specification(df: pd.DataFrame, names: list[str] | None,
                                types: dict[str, str]) -> None:
    columns = set(map(str, df.columns))
    unknown = [c for c in list(types) + list(names or []) if c not in columns]
    if unknown:
        raise ConfigError(
            f"feature types name columns that are not in the table: {', '.join(unknown[:5])}; "
            "fix the names in the feature types file"
        )
