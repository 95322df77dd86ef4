"""Turn one raw column, whatever its dtype, into the values a kind of feature needs."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

DATE_PARTS = ("year", "month", "day", "dayofweek", "dayofyear", "hour", "epoch_days")


def as_float(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.to_numeric(values.astype("string").str.strip(), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan)


def as_category_strings(values: pd.Series) -> np.ndarray:
    """Object array of strings, None where missing; 1, 1.0 and '1' become the same label."""
    arr = values.to_numpy(dtype=object)
    out = np.empty(len(arr), dtype=object)
    for i, v in enumerate(arr):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA or v is pd.NaT:
            out[i] = None
        elif isinstance(v, float) and v.is_integer():
            out[i] = str(int(v))
        else:
            out[i] = str(v).strip()
    return out


def as_text(values: pd.Series) -> np.ndarray:
    return values.astype("string").fillna("").to_numpy(dtype=object)


def date_parts(values: pd.Series) -> np.ndarray:
    """A (rows, len(DATE_PARTS)) float matrix; NaN where the date is missing or unparseable."""
    if pd.api.types.is_datetime64_any_dtype(values):
        dt = pd.to_datetime(values)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dt = pd.to_datetime(values.astype("string"), errors="coerce", format="mixed")
    if getattr(dt.dt, "tz", None) is not None:
        dt = dt.dt.tz_convert(None)
    accessor = dt.dt
    cols = [
        accessor.year, accessor.month, accessor.day, accessor.dayofweek, accessor.dayofyear,
        accessor.hour,
        (dt - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1),
    ]
    return np.column_stack([np.asarray(c, dtype=np.float64) for c in cols])
