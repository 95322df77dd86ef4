"""Turn one raw column (a numpy array of any dtype) into the values a kind of feature needs.

Columns arrive as numpy arrays, not pandas Series: a one-row prediction then costs a
few microseconds per column instead of a pandas round trip.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pandas as pd

DATE_PARTS = ("year", "month", "day", "dayofweek", "dayofyear", "hour", "epoch_days")
SMALL = 64  # up to this many values, plain Python beats pandas' vectorised set-up cost


# what pandas.to_numeric accepts as a number, so both paths agree
_NUMBER = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$|^[+-]?(inf|nan)$",
                     re.IGNORECASE)


def columns_of(X: pd.DataFrame, names: list[str]) -> dict[str, np.ndarray]:
    """The named columns as numpy arrays, with the cheapest access for the batch size.

    Small batches go through one object matrix (microseconds); values keep their meaning
    because every converter below treats numpy scalars and Python objects alike.
    """
    if len(X) > SMALL:
        return {n: X[n].to_numpy() for n in names}
    if X.columns.is_unique:
        positions = X.columns.get_indexer(names)
    else:  # duplicated names: the first occurrence, as X[name] would fail on it anyway
        first: dict = {}
        for i, c in enumerate(X.columns):
            first.setdefault(c, i)
        positions = np.array([first.get(n, -1) for n in names], dtype=np.int64)
    if len(positions) and positions.min() < 0:
        missing = [n for n, p in zip(names, positions, strict=True) if p < 0]
        raise KeyError(f"columns not in the input: {missing}")
    matrix = X.to_numpy(dtype=object)
    return {n: matrix[:, p] for n, p in zip(names, positions, strict=True)}


def _is_missing(v: object) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def scalar_float(v: object) -> float:
    """One value as `as_float` reads it (NaN when missing or not a number)."""
    if _is_missing(v):
        return math.nan
    if isinstance(v, pd.Timestamp | np.datetime64):
        return float(pd.Timestamp(v).value)
    if isinstance(v, str):
        v = v.strip()
        if not _NUMBER.match(v):
            return math.nan
    try:
        return float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def as_float(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "fiub":
        return values.astype(np.float64, copy=False)
    if values.dtype.kind == "M":
        ns = values.astype("datetime64[ns]")
        return np.where(np.isnat(ns), np.nan, ns.astype(np.int64).astype(np.float64))
    if len(values) <= SMALL:
        return np.array([scalar_float(v) for v in values], dtype=np.float64)
    series = pd.Series(values, dtype=object)
    numeric = pd.to_numeric(series, errors="coerce")
    strings = series.map(lambda v: v.strip() if isinstance(v, str) else v)
    retry = numeric.isna() & series.notna()
    if retry.any():
        numeric[retry] = pd.to_numeric(strings[retry], errors="coerce")
    return numeric.to_numpy(dtype=np.float64, na_value=np.nan)


def category_string(v: object) -> str | None:
    """1, 1.0 and '1' are the same label; None for missing.

    Floats keep 7 significant digits, so a float32 value reads the same whether it
    arrives as a numpy float32 or widened to a Python float.
    """
    if _is_missing(v):
        return None
    if isinstance(v, float | np.floating):
        f = float(v)
        if math.isnan(f):
            return None
        return str(int(f)) if f.is_integer() else f"{f:.7g}"
    if isinstance(v, np.datetime64 | pd.Timestamp):
        return None if pd.isna(v) else str(pd.Timestamp(v))
    return str(v).strip()


def as_category_strings(values: np.ndarray) -> np.ndarray:
    """Object array of label strings, None where missing (same labels as category_string)."""
    if len(values) > SMALL:
        kind = pd.api.types.infer_dtype(values, skipna=True)
        if kind == "string":  # the common case, vectorised
            series = pd.Series(values, dtype=object)
            stripped = series.str.strip()
            return stripped.where(series.notna(), None).to_numpy(dtype=object)
        if kind == "integer" and values.dtype.kind in "iu":
            return values.astype(str).astype(object)
    out = np.empty(len(values), dtype=object)
    out[:] = [category_string(v) for v in values]
    return out


def as_text(values: np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = ["" if _is_missing(v) else str(v) for v in values]
    return out


def date_parts(values: np.ndarray) -> np.ndarray:
    """A (rows, len(DATE_PARTS)) float matrix; NaN where the date is missing or unparseable."""
    series = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(series):
        dt = pd.to_datetime(series)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dt = pd.to_datetime(series.astype("string"), errors="coerce", format="mixed")
    if getattr(dt.dt, "tz", None) is not None:
        dt = dt.dt.tz_convert(None)
    accessor = dt.dt
    cols = [
        accessor.year, accessor.month, accessor.day, accessor.dayofweek, accessor.dayofyear,
        accessor.hour,
        (dt - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1),
    ]
    return np.column_stack([np.asarray(c, dtype=np.float64) for c in cols])
