"""Rows checked against a model's input schema: the one check every entry point runs.

`tabpilot predict`, `/invocations`, batch transform and `Model.predict` all pass their
frame through `check_input` before the encoder sees it, so a value the model cannot read
is refused the same way everywhere: a numeric column given "fifty", or a date column
given "soon", is an error naming the row (1-based, as people count), the column and the
value, because read silently as missing it changes the prediction without a word. Users
who prefer the encoder's leniency opt in (`on_bad_value="missing"`); those values are
then counted, never hidden. Categories the model never saw are allowed (the encoder has
a slot for them) and counted. Blank cells and NA markers are missing values, not errors.

Numbers are parsed by the encoder's own converter (`features.columns.as_float`), so
what passes here is exactly what the model reads as a number.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.data.read import DEFAULT_NA_VALUES
from tabpilot.errors import ConfigError, DataError, shown
from tabpilot.features.columns import (
    NAT,
    SMALL,
    as_category_strings,
    as_float,
    category_string,
    one_date,
    parse_dates,
    scalar_float,
)

ON_BAD_VALUE = ("error", "missing")
MAX_LISTED = 10  # missing columns named in a message; the rest are counted
# how each entry point spells the opt-in, for the error message's fix
PYTHON_HINT = 'on_bad_value="missing"'
CLI_HINT = "--on-bad-value missing"
HTTP_HINT = "the request header X-Tabpilot-On-Bad-Value: missing"
_NA_MARKERS = frozenset(v.strip().lower() for v in DEFAULT_NA_VALUES)
_PARSED_AS = {"numeric": "a number", "datetime": "a date"}
_NUMBERS = (float, int)
Check = tuple[str, str, frozenset[str]]  # a column, its kind and (categorical) known labels


class BadValueError(DataError):
    """A value does not parse for its column's kind (text in a numeric column...)."""


class MissingColumnsError(DataError):
    """The input lacks feature columns the model was trained on."""


def check_on_bad_value(value: str) -> str:
    """`value` if it is a known policy, else a ConfigError naming the choices."""
    if value not in ON_BAD_VALUE:
        raise ConfigError(f"on_bad_value must be one of {', '.join(map(repr, ON_BAD_VALUE))}; "
                          f"got {shown(value)}")
    return value


def listed(names: Sequence[Any], limit: int = MAX_LISTED) -> str:
    """'a', 'b' and 'c' as a message lists them: all up to `limit`, then "and N more"."""
    shown_names = ", ".join(shown(n) for n in names[:limit])
    return shown_names + (f" and {len(names) - limit} more" if len(names) > limit else "")


def missing_columns_message(missing: Sequence[Any], what: str = "input") -> str:
    count = f"{len(missing)} required columns" if len(missing) > 1 else "a required column"
    return (f"{what} lacks {count}: {listed(missing)}; send every feature column the "
            "model was trained on")


@dataclass(frozen=True)
class InputSchema:
    """What a model reads: its feature columns, their kinds, and the categories it saw."""

    features: list[str]
    kinds: dict[str, str]  # feature -> numeric | categorical | datetime | text
    known: dict[str, frozenset[str]] = field(default_factory=dict)  # categorical -> labels

    @functools.cached_property
    def checks(self) -> tuple[Check, ...]:
        """What check_input reads, column by column: the numbers and dates (which must
        parse) and the categorical columns with known labels (unseen ones are counted)."""
        return tuple((c, kind, self.known.get(c, frozenset())) for c in self.features
                     if (kind := self.kinds.get(c, "")) in _PARSED_AS
                     or (kind == "categorical" and c in self.known))

    @classmethod
    def of(cls, predictor: Any, metadata: Mapping[str, Any]) -> InputSchema:
        """From a packaged model: kinds from its metadata (the job's resolved schema), else
        from its encoders; known categories from every encoder inside (an ensemble's
        members may have been fitted on different rows)."""
        encoders = [e for p in _singles(predictor)
                    if (e := getattr(p, "encoder", None)) is not None]
        kinds = {c: str(k) for c, k in (metadata.get("input_schema") or {}).items()}
        for encoder in encoders:
            for kind in ("numeric", "categorical", "datetime", "text"):
                for col in getattr(encoder, kind, ()):
                    kinds.setdefault(col, kind)
        known: dict[str, set[str]] = {}
        for encoder in encoders:
            for col, freq in (getattr(encoder, "frequencies_", None) or {}).items():
                known.setdefault(col, set()).update(map(str, freq))
        features = list(predictor.features)
        return cls(features, {c: kinds.get(c, "categorical") for c in features},
                   {c: frozenset(v) for c, v in known.items()})


def _singles(predictor: Any) -> list[Any]:
    members = getattr(predictor, "members", None)
    return [predictor] if members is None else [p for m in members for p in _singles(m)]


@dataclass
class InputReport:
    """What the check found in rows it let through: values read as missing because they
    did not parse (only with on_bad_value="missing") and categories the model never saw."""

    rows: int = 0
    bad_values: dict[str, int] = field(default_factory=dict)
    unseen_categories: dict[str, int] = field(default_factory=dict)

    @property
    def bad_total(self) -> int:
        return sum(self.bad_values.values())

    @property
    def unseen_total(self) -> int:
        return sum(self.unseen_categories.values())

    def add(self, other: InputReport) -> InputReport:
        """This report with another batch's counts added (batch transform's chunks)."""
        self.rows += other.rows
        for mine, theirs in ((self.bad_values, other.bad_values),
                             (self.unseen_categories, other.unseen_categories)):
            for col, n in theirs.items():
                mine[col] = mine.get(col, 0) + n
        return self

    def headers(self) -> dict[str, str]:
        """HTTP response headers with the counts."""
        return {"X-Tabpilot-Bad-Values": str(self.bad_total),
                "X-Tabpilot-Unseen-Categories": str(self.unseen_total)}

    def record(self) -> dict[str, Any]:
        """JSON-ready counts, per column, for the capture and the CLI."""
        return {"rows": self.rows, "badValues": dict(self.bad_values),
                "unseenCategories": dict(self.unseen_categories)}

    def summary(self) -> str | None:
        """One line for people, None when there is nothing to say."""
        parts = []
        if self.bad_values:
            n = self.bad_total
            parts.append(f"{n} unreadable value{'' if n == 1 else 's'} read as missing "
                         f"({_per_column(self.bad_values)})")
        if self.unseen_categories:
            n = self.unseen_total
            parts.append(f"{n} categor{'y' if n == 1 else 'ies'} not seen in training "
                         f"({_per_column(self.unseen_categories)})")
        return "; ".join(parts) or None


def _per_column(counts: Mapping[str, int]) -> str:
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{shown(c)}: {n}" for c, n in items[:MAX_LISTED])
    return text + (f" and {len(items) - MAX_LISTED} more columns" if len(items) > MAX_LISTED
                   else "")


def check_input(df: pd.DataFrame, schema: InputSchema, on_bad_value: str = "error", *,
                first_row: int = 1, hint: str = PYTHON_HINT
                ) -> tuple[pd.DataFrame, InputReport]:
    """`df` ready for the model, and what was found in it.

    Missing feature columns are a MissingColumnsError. A value that does not parse for
    its column's kind is a BadValueError naming the first one (row numbers start at
    `first_row`, for chunks of a larger table) and how many there are, unless
    `on_bad_value` is "missing": then it is counted, and the encoder reads it as missing
    as it reads any unparseable value, so `df` comes back as it was.
    """
    check_on_bad_value(on_bad_value)
    position: dict[Any, int] = {}
    for i, name in enumerate(df.columns.tolist()):  # duplicated names: the first, as read
        position.setdefault(name, i)
    missing = [c for c in schema.features if c not in position]
    if missing:
        raise MissingColumnsError(missing_columns_message(missing))
    report = InputReport(rows=len(df))
    if len(df) <= SMALL:  # one small copy, value by value (a row in microseconds)
        first = _check_small(df.to_numpy(dtype=object).T.tolist(), position, schema.checks,
                             report)
    else:
        first = _check_large(df, position, schema, report)
    if first is not None and on_bad_value == "error":
        raise BadValueError(_bad_value_message(first, first_row, schema, report, hint))
    return df, report


def _check_small(columns: list[list[Any]], position: Mapping[Any, int],
                 checks: Sequence[Check], report: InputReport) -> tuple[int, str, Any] | None:
    """check_input's counts for a few rows (`columns`: the frame's, as lists), and the
    earliest bad value: (row, column, value)."""
    first: tuple[int, str, Any] | None = None
    for col, kind, known in checks:
        values = columns[position[col]]
        if kind == "categorical":  # a known label as it is stored needs no more
            unseen = 0 if all(type(v) is str and v in known for v in values) else \
                _unseen_few(values, known)
            if unseen:
                report.unseen_categories[col] = unseen
            continue
        # a float or an int (a typed column's cells) is a number, or missing
        unparsed, read = (_not_a_number, _NUMBERS) if kind == "numeric" else (_not_a_date, ())
        bad = [i for i, v in enumerate(values)
               if type(v) not in read and unparsed(v) and not _is_missing(v)]
        if bad:
            first = _counted(report, col, bad, values, first)
    return first


def _check_large(df: pd.DataFrame, position: Mapping[Any, int], schema: InputSchema,
                 report: InputReport) -> tuple[int, str, Any] | None:
    """check_input's counts for many rows, column by column, and the earliest bad value:
    typed numbers and dates hold only readable values."""
    dtypes = df.dtypes.tolist()
    first: tuple[int, str, Any] | None = None
    for col, kind, known in schema.checks:
        if kind != "categorical" and dtypes[position[col]].kind in "fiubM":
            continue
        values = df.iloc[:, position[col]].to_numpy()
        if kind == "categorical":
            unseen = _unseen(values, known)
            if unseen:
                report.unseen_categories[col] = unseen
            continue
        bad = _unreadable(values, kind)
        if len(bad):
            first = _counted(report, col, bad, values, first)
    return first


def _counted(report: InputReport, col: str, bad: Sequence[int], values: Sequence[Any],
             first: tuple[int, str, Any] | None) -> tuple[int, str, Any]:
    """Count column `col`'s unreadable values (at positions `bad`) in the report; the
    earlier of `first` and its first one."""
    report.bad_values[col] = len(bad)
    return (int(bad[0]), col, values[bad[0]]) if first is None or bad[0] < first[0] else first


def _unseen(values: np.ndarray, known: frozenset[str]) -> int:
    """How many values are categories the model never saw (missing values are not)."""
    if len(values) > SMALL:
        try:
            return _unseen_many(values, known)
        except TypeError:  # unhashable cells (JSON lists): labelled one by one below
            pass
    return _unseen_few(values, known)


def _unseen_few(values: Sequence[Any], known: frozenset[str]) -> int:
    """`_unseen` value by value (as_category_strings, one value at a time)."""
    labels = (category_string(v) for v in values)
    return sum(1 for v in labels if v is not None and v not in known
               and v.lower() not in _NA_MARKERS)


def _unseen_many(values: np.ndarray, known: frozenset[str]) -> int:
    """`_unseen` for a large batch: each distinct value is labelled and looked up once."""
    codes, uniques = pd.factorize(values)  # -1 where missing
    labels = as_category_strings(np.asarray(uniques, dtype=object))
    new = np.array([v is not None and v not in known and v.lower() not in _NA_MARKERS
                    for v in labels], dtype=bool)
    if not new.any():
        return 0
    return int(np.bincount(codes[codes >= 0], minlength=len(uniques))[new].sum())


def _unreadable(values: np.ndarray, kind: str) -> np.ndarray:
    """Positions of the values of a large batch that do not parse as the encoder parses
    them (a small one is read value by value, `_check_small`)."""
    if kind == "numeric":
        unread = np.flatnonzero(np.isnan(as_float(values)))
    else:  # as the encoder parses dates
        unread = np.flatnonzero(np.isnat(parse_dates(values)))
    return np.array([i for i in unread if not _is_missing(values[i])], dtype=np.int64)


def _not_a_number(value: Any) -> bool:
    return math.isnan(scalar_float(value))


def _not_a_date(value: Any) -> bool:
    return one_date(value) == NAT


def _is_missing(value: Any) -> bool:
    """Nulls, blanks and the NA markers tables are read with ("NA", "null"... data/read.py)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    return isinstance(value, str) and value.strip().lower() in _NA_MARKERS


def _bad_value_message(first: tuple[int, str, Any], first_row: int, schema: InputSchema,
                       report: InputReport, hint: str) -> str:
    row, col, value = first
    kind = schema.kinds[col]
    total = report.bad_total
    more = ""
    if total > 1:
        more = f" ({total} such values in all: {_per_column(report.bad_values)})"
    return (f"row {first_row + row}, column {shown(col)}: {shown(value)} is not "
            f"{_PARSED_AS[kind]}, and the model reads {shown(col)} as {kind}{more}; fix the "
            f"value, leave it blank for missing, or read unreadable values as missing with "
            f"{hint}")
