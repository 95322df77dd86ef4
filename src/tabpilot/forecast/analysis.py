"""The time-series analysis of a forecasting job's table: what the exploration notebook shows.

Per item: its length, the periods that were missing (and filled), the strength of its
seasonality and trend (Wang, Smith & Hyndman 2006: 1 - Var(remainder) / Var(component +
remainder) of a classical decomposition, 0 = none, 1 = all of the variation), and its
intermittency (the share of zero periods; ADI, the mean interval between non-zero periods,
and CV2, the squared variation of the non-zero sizes, classed smooth / erratic /
intermittent / lumpy at Syntetos & Boylan's 1.32 and 0.49). Over the table: the frequency
the raw timestamps have (pandas' inference on the longest item) against the one asked
for, and the lines a person should read first. Pure numpy and pandas: nothing is fitted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tabpilot.forecast.request import ForecastRequest
from tabpilot.forecast.series import SINGLE, Series

ANALYSIS = "time_series_analysis.json"
MAX_ITEMS = 2000  # per-item rows kept in the file (the summary covers every item)
ADI_CUT, CV2_CUT = 1.32, 0.49  # Syntetos & Boylan's classes


def analyse(table: pd.DataFrame, request: ForecastRequest, series: Series) -> dict[str, Any]:
    """The analysis as plain JSON-ready data."""
    season = request.season
    raw = _raw_periods(table, request, series)
    items = []
    for uid, g in series.frame.groupby("unique_id", sort=False):
        y = g["y"].to_numpy(float)
        items.append({"item": uid, "length": len(y), "start": str(g["ds"].iloc[0]),
                      "end": str(g["ds"].iloc[-1]),
                      "missing_periods": max(0, len(y) - raw.get(uid, len(y))),
                      "mean": float(np.mean(y)), "zero_share": float(np.mean(y == 0)),
                      **strengths(y, season), **intermittency(y)})
    frame = pd.DataFrame(items)
    inferred = inferred_frequency(table, request)
    lengths = frame["length"]
    summary = {
        "items": len(frame), "rows": len(table), "frequency": request.frequency,
        "inferred_frequency": inferred, "season_length": season,
        "length": {"min": int(lengths.min()), "median": float(lengths.median()),
                   "max": int(lengths.max())},
        "items_with_missing_periods": int((frame["missing_periods"] > 0).sum()),
        "missing_periods": int(frame["missing_periods"].sum()),
        "classes": frame["demand_class"].value_counts().to_dict(),
        "median_seasonal_strength": _median(frame.get("seasonal_strength")),
        "median_trend_strength": _median(frame.get("trend_strength")),
    }
    return {"summary": summary, "insights": insights(summary, request),
            "notes": list(series.notes), "items": items[:MAX_ITEMS]}


def _raw_periods(table: pd.DataFrame, request: ForecastRequest, series: Series
                 ) -> dict[str, int]:
    """Each item's number of distinct periods with a target value, in the raw table."""
    from tabpilot.forecast.series import _ids, _to_period_start

    ds = pd.to_datetime(table[request.timestamp], errors="coerce", format="mixed")
    if ds.dt.tz is not None:
        ds = ds.dt.tz_localize(None)
    frame = pd.DataFrame({"uid": _ids(table, request), "ds": _to_period_start(ds, series.freq),
                          "has": pd.to_numeric(table[request.target], errors="coerce").notna()})
    return frame[frame["has"]].groupby("uid")["ds"].nunique().to_dict()


def inferred_frequency(table: pd.DataFrame, request: ForecastRequest) -> str | None:
    """The frequency pandas reads off the longest item's timestamps (None: irregular)."""
    from tabpilot.forecast.series import _ids

    ids = _ids(table, request)
    longest = ids.value_counts().index[0]
    ds = pd.to_datetime(table.loc[ids == longest, request.timestamp], errors="coerce",
                        format="mixed").dropna().drop_duplicates().sort_values()
    if len(ds) < 3:
        return None
    try:
        return pd.infer_freq(pd.DatetimeIndex(ds))
    except (TypeError, ValueError):
        return None


def strengths(y: np.ndarray, season: int) -> dict[str, float | None]:
    """Seasonal and trend strength of a classical additive decomposition (None when the
    series is shorter than two seasons, or has no season)."""
    n = len(y)
    if season <= 1 or n < 2 * season or np.std(y) == 0:
        return {"seasonal_strength": None, "trend_strength": _trend_only(y)}
    trend = _centred_mean(y, season)
    detrended = y - trend
    ok = ~np.isnan(detrended)
    positions = np.arange(n) % season
    means = np.array([np.nanmean(detrended[ok & (positions == p)]) for p in range(season)])
    seasonal = means[positions] - np.mean(means)
    remainder = detrended - seasonal
    r = remainder[ok]
    return {"seasonal_strength": _strength(r, seasonal[ok] + r),
            "trend_strength": _strength(r, trend[ok] + r)}


def _trend_only(y: np.ndarray) -> float | None:
    window = min(len(y) // 4 * 2 + 1, 13)
    if len(y) < 8 or np.std(y) == 0:
        return None
    trend = _centred_mean(y, window)
    ok = ~np.isnan(trend)
    r = (y - trend)[ok]
    return _strength(r, trend[ok] + r)


def _centred_mean(y: np.ndarray, window: int) -> np.ndarray:
    """The centred moving average (2 x window for an even window), NaN at the ends."""
    s = pd.Series(y)
    out = s.rolling(window, center=True).mean()
    if window % 2 == 0:
        out = out.rolling(2).mean().shift(-1)
    return out.to_numpy(float)


def _strength(remainder: np.ndarray, component_plus: np.ndarray) -> float | None:
    total = float(np.var(component_plus))
    if total == 0:
        return None
    return float(max(0.0, 1.0 - float(np.var(remainder)) / total))


def intermittency(y: np.ndarray) -> dict[str, Any]:
    nonzero = np.flatnonzero(y != 0)
    if len(nonzero) == 0:
        return {"adi": None, "cv2": None, "demand_class": "all zero"}
    adi = float(len(y) / len(nonzero))
    sizes = y[nonzero]
    cv2 = float((np.std(sizes) / np.mean(sizes)) ** 2) if np.mean(sizes) != 0 else 0.0
    kind = ("intermittent" if cv2 < CV2_CUT else "lumpy") if adi >= ADI_CUT else \
        ("smooth" if cv2 < CV2_CUT else "erratic")
    return {"adi": adi, "cv2": cv2, "demand_class": kind}


def insights(summary: dict[str, Any], request: ForecastRequest) -> list[str]:
    """What a person should read first, in words."""
    lines = []
    inferred = summary["inferred_frequency"]
    if inferred is None:
        lines.append(f"the timestamps have no regular step pandas recognises; they were put "
                     f"on the {request.frequency} grid (with --aggregation, or gaps filled)")
    elif summary["missing_periods"]:
        lines.append(f"{summary['missing_periods']} missing periods in "
                     f"{summary['items_with_missing_periods']} items were filled "
                     f"(middlefill {request.filling.middlefill}, backfill "
                     f"{request.filling.backfill}, frontfill {request.filling.frontfill})")
    length = summary["length"]
    if length["min"] < 2 * max(summary["season_length"], 1) and summary["season_length"] > 1:
        lines.append(f"the shortest item has {length['min']} points, under two seasons of "
                     f"{summary['season_length']}: its season cannot be estimated")
    sparse = sum(summary["classes"].get(k, 0) for k in ("intermittent", "lumpy", "all zero"))
    if sparse:
        lines.append(f"{sparse} of {summary['items']} items are intermittent or lumpy "
                     "(ADI >= 1.32): the Croston family is among the candidates")
    strength = summary["median_seasonal_strength"]
    if strength is not None:
        lines.append(f"median seasonal strength {strength:.2f} at a season of "
                     f"{summary['season_length']} periods"
                     + (" (strong: seasonal models should lead)" if strength >= 0.6 else ""))
    return lines


def _median(values: Any) -> float | None:
    if values is None:
        return None
    clean = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    return None if clean.empty else float(clean.median())


def item_label(uid: str) -> str:
    return "the series" if uid == SINGLE else str(uid)
