"""Per-feature statistics in the schema of Model Monitor's statistics.json.

Model Monitor reads every value as text and infers a type per column from what the values
parse as, because captured requests (CSV or JSON bodies) carry no types. This module does
the same for a table read with types and for captured text alike: a column is Integral
when every present value is an integral number, Fractional when every one is a number,
String otherwise, Unknown when none is present. Numbers are read from text with
`pd.to_numeric`, so "3", "3.0" and 3 are one value wherever they came from.

Figures follow Deequ's, which Model Monitor runs: `std_dev` is the population standard
deviation (ddof 0); the 10 buckets of `distribution.kll` are equal-width from min to max
(the last one closed). The `sketch` holds up to SKETCH_K exact order statistics in one
level, not a KLL compactor hierarchy: drift is measured on the baseline's kept sample
(`baseline.py`), not on the sketch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

INTEGRAL, FRACTIONAL, STRING, UNKNOWN = "Integral", "Fractional", "String", "Unknown"
NUMERIC = (INTEGRAL, FRACTIONAL)
BUCKETS = 10
MAX_CATEGORIES = 100  # categorical buckets kept per feature (the most frequent)
SKETCH_K = 2048


def missing(series: pd.Series) -> pd.Series:
    """True where a value is absent: null, NaN, or blank text (a CSV's empty field)."""
    if not _is_text(series):
        return series.isna()
    codes, uniques = pd.factorize(series, use_na_sentinel=True)  # each distinct value once
    blank = np.array([str(u).strip() == "" for u in uniques] + [True])
    return pd.Series(blank[codes], index=series.index)


def _is_text(series: pd.Series) -> bool:
    return series.dtype == object or pd.api.types.is_string_dtype(series.dtype)


def numbers(series: pd.Series) -> pd.Series:
    """The column as floats; NaN where a value is absent or is not a number."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return pd.Series(np.nan, index=series.index)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.astype(float)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)  # each distinct value once
    text = pd.Series(uniques, dtype=object).map(
        lambda v: v.strip() if isinstance(v, str) else v)
    parsed = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return pd.Series(np.append(parsed, np.nan)[codes], index=series.index)


def is_integral(values: pd.Series) -> pd.Series:
    """True where a number is finite and whole (NaN and infinities are not)."""
    v = values.to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        return pd.Series(np.isfinite(v) & (np.mod(v, 1) == 0), index=values.index)


def infer_type(series: pd.Series) -> str:
    present = series[~missing(series)]
    if present.empty:
        return UNKNOWN
    if _is_text(present) and numbers(present.iloc[:1000]).isna().any():
        return STRING  # a text column shows it in its first rows: no need to parse them all
    values = numbers(present)
    if values.isna().any():
        return STRING
    return INTEGRAL if is_integral(values).all() else FRACTIONAL


def type_mismatches(series: pd.Series, expected: str) -> tuple[int, int]:
    """(present values, those that are not of the `expected` type). Any value is a
    String; an integral number is also Fractional, not the reverse."""
    present = series[~missing(series)]
    if expected not in NUMERIC or present.empty:
        return len(present), 0
    values = numbers(present)
    wrong = ~is_integral(values) if expected == INTEGRAL else values.isna()
    return len(present), int(wrong.sum())


def feature_statistics(name: str, series: pd.Series, inferred: str | None = None
                       ) -> dict[str, Any]:
    inferred = inferred or infer_type(series)
    absent = missing(series)
    common = {"num_present": int((~absent).sum()), "num_missing": int(absent.sum())}
    feature: dict[str, Any] = {"name": str(name), "inferred_type": inferred}
    if inferred in NUMERIC:
        values = numbers(series[~absent]).dropna().to_numpy()
        feature["numerical_statistics"] = {"common": common, **numerical(values)}
    else:
        text = series[~absent].astype(str)
        counts = text.value_counts(sort=True)
        feature["string_statistics"] = {
            "common": common, "distinct_count": float(len(counts)),
            "distribution": {"categorical": {"buckets": [
                {"value": str(v), "count": int(c)} for v, c in
                counts.iloc[:MAX_CATEGORIES].items()]}}}
    return feature


def numerical(values: np.ndarray) -> dict[str, Any]:
    if len(values) == 0:
        return {"mean": 0.0, "sum": 0.0, "std_dev": 0.0, "min": 0.0, "max": 0.0,
                "distribution": {"kll": {"buckets": [], "sketch": _sketch(values)}}}
    return {"mean": float(np.mean(values)), "sum": float(np.sum(values)),
            "std_dev": float(np.std(values)), "min": float(np.min(values)),
            "max": float(np.max(values)),
            "distribution": {"kll": {"buckets": buckets(values), "sketch": _sketch(values)}}}


def buckets(values: np.ndarray, n: int = BUCKETS) -> list[dict[str, float]]:
    low, high = float(np.min(values)), float(np.max(values))
    if high == low:
        return [{"lower_bound": low, "upper_bound": high, "count": float(len(values) if i == 0
                                                                           else 0)}
                for i in range(n)]
    counts, edges = np.histogram(values, bins=n, range=(low, high))
    return [{"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]),
             "count": float(counts[i])} for i in range(n)]


def _sketch(values: np.ndarray) -> dict[str, Any]:
    ordered = np.sort(values)
    if len(ordered) > SKETCH_K:
        ordered = ordered[np.linspace(0, len(ordered) - 1, SKETCH_K).round().astype(int)]
    return {"parameters": {"c": 0.64, "k": float(SKETCH_K)},
            "data": [[float(v) for v in ordered]]}


def dataset_statistics(df: pd.DataFrame, types: dict[str, str] | None = None
                       ) -> dict[str, Any]:
    """statistics.json for `df`; `types` forces a column's type (a window is described
    with the baseline's types, so that its figures compare)."""
    types = types or {}
    return {"version": 0.0, "dataset": {"item_count": int(len(df))},
            "features": [feature_statistics(c, df[c], types.get(str(c))) for c in df.columns]}
