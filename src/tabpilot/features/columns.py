"""Turn one raw column (a numpy array of any dtype) into the values a kind of feature needs.

Columns arrive as numpy arrays, not pandas Series: a one-row prediction then costs a
few microseconds per column instead of a pandas round trip.
"""

from __future__ import annotations

import datetime as dt
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


NS_PER_HOUR = 3_600 * 10**9
NS_PER_DAY = 24 * NS_PER_HOUR
NAT = np.iinfo(np.int64).min  # NaT's nanoseconds
EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def parse_dates(values: np.ndarray) -> np.ndarray:
    """Dates as datetime64[ns], naive (an aware one in UTC); NaT where missing or unreadable.

    Values are read as their text, each in its own format (pandas' "mixed"): the same
    reading for one row as for a million, since pandas parses each string of a batch with
    the parser `pd.Timestamp` uses; a small batch calls it directly (microseconds, against
    a fraction of a millisecond for pandas' vectorised set-up).
    """
    if values.dtype.kind == "M":
        return values.astype("datetime64[ns]")
    if len(values) <= SMALL:
        return np.array([one_date(v) for v in values], dtype="int64").view("datetime64[ns]")
    text = pd.Series(values).astype("string")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stamps = pd.to_datetime(text, errors="coerce", format="mixed", utc=True)
    return stamps.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")


def one_date(v: object) -> int:
    """One value as `parse_dates` reads it: nanoseconds since 1970, NAT when unreadable."""
    if _is_missing(v):
        return NAT
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            stamp = pd.Timestamp(str(v))
            if stamp is pd.NaT:
                return NAT
            if stamp.tzinfo is not None:
                stamp = stamp.tz_convert(None)
            return int(stamp.as_unit("ns").value)
        except (ValueError, OverflowError, TypeError):  # OutOfBoundsDatetime is a ValueError
            return NAT


def date_row(v: object) -> list[float]:
    """`date_parts` of one value, in plain Python (a few microseconds; the same numbers)."""
    ns = one_date(v)
    if ns == NAT:
        return [math.nan] * len(DATE_PARTS)
    day_number = ns // NS_PER_DAY
    day = dt.date.fromordinal(day_number + EPOCH_ORDINAL)
    return [float(day.year), float(day.month), float(day.day), float(day.weekday()),
            float(day.timetuple().tm_yday), float((ns - day_number * NS_PER_DAY) // NS_PER_HOUR),
            float(ns) / NS_PER_DAY]  # rounded as numpy rounds it


def date_parts(values: np.ndarray) -> np.ndarray:
    """A (rows, len(DATE_PARTS)) float matrix; NaN where the date is missing or unparseable.
    Calendar arithmetic on whole days since 1970 (floored, so dates before 1970 come out
    as pandas' accessors give them), with no pandas object per call."""
    if values.dtype.kind != "M" and len(values) <= SMALL:
        return np.array([date_row(v) for v in values], dtype=np.float64
                        ).reshape(len(values), len(DATE_PARTS))
    stamps = parse_dates(values)
    ns = stamps.astype(np.int64)
    day_number = ns // NS_PER_DAY  # floored (numpy's own cast to days overflows near 1677)
    days = day_number.astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    years = days.astype("datetime64[Y]")
    parts = [
        years.astype(np.int64) + 1970,
        months.astype(np.int64) % 12 + 1,
        (days - months.astype("datetime64[D]")).astype(np.int64) + 1,
        (day_number + 3) % 7,  # 1970-01-01 was a Thursday; Monday is 0
        (days - years.astype("datetime64[D]")).astype(np.int64) + 1,
        (ns - day_number * NS_PER_DAY) // NS_PER_HOUR,
    ]
    out = np.column_stack([*(p.astype(np.float64) for p in parts), ns / NS_PER_DAY])
    out[np.isnat(stamps)] = np.nan
    return out
