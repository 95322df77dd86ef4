"""A metric's series as BatchPutMetrics fills it, and the summary SageMaker reports.

A series is a JSON-friendly dict kept in the store: the running count, mean and sum of
squared deviations (Welford's update, so StdDev stays exact however many values arrive
and in what order), min, max, the last value and its timestamp, and the points themselves
(`[timestamp, step or None, value]`) for charts and BatchGetMetrics. Points beyond
`MAX_POINTS` are thinned to every other one (the summary is still over every value);
"Last" is the value with the latest timestamp (then step, then arrival), as SageMaker
reports it, not the one that arrived last.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

MAX_POINTS = 10_000
STATS = ("Min", "Max", "Avg", "StdDev", "Last", "Count")


def empty() -> dict[str, Any]:
    return {"count": 0, "mean": 0.0, "m2": 0.0, "min": None, "max": None, "last": None,
            "last_key": None, "points": []}


def add(series: dict[str, Any] | None, points: Iterable[tuple[float, int | None, float]]
        ) -> dict[str, Any]:
    """`series` (or a new one) with `points` (timestamp, step, value) added."""
    out = dict(series) if series else empty()
    kept = list(out["points"])
    for timestamp, step, value in points:
        value = float(value)
        out["count"] += 1
        delta = value - out["mean"]
        out["mean"] += delta / out["count"]
        out["m2"] += delta * (value - out["mean"])
        out["min"] = value if out["min"] is None else min(out["min"], value)
        out["max"] = value if out["max"] is None else max(out["max"], value)
        key = [float(timestamp), -1 if step is None else int(step)]
        if out["last_key"] is None or key >= out["last_key"]:
            out["last"], out["last_key"] = value, key
        kept.append([float(timestamp), step, value])
    while len(kept) > MAX_POINTS:
        kept = kept[::2]
    out["points"] = kept
    return out


def from_values(values: list[float], timestamp: float | None) -> dict[str, Any]:
    """A series from values in order (a built-in algorithm's per-iteration curve)."""
    return add(None, ((timestamp or 0.0, i, v) for i, v in enumerate(values)))


def summary(series: dict[str, Any]) -> dict[str, Any]:
    """Min, Max, Avg, StdDev (sample; 0 for one value), Last, Count and TimeStamp."""
    n = series["count"]
    std = math.sqrt(series["m2"] / (n - 1)) if n > 1 else 0.0
    return {"Min": series["min"], "Max": series["max"], "Avg": series["mean"],
            "StdDev": std, "Last": series["last"], "Count": n,
            "TimeStamp": series["last_key"][0] if series["last_key"] else None}


def ordered(series: dict[str, Any]) -> list[list[Any]]:
    """The points by step when every point has one, else by timestamp."""
    points = series["points"]
    if points and all(p[1] is not None for p in points):
        return sorted(points, key=lambda p: (p[1], p[0]))
    return sorted(points, key=lambda p: p[0])


def aggregate(series: dict[str, Any], stat: str, period: str, x_axis: str,
              start: float | None = None, end: float | None = None
              ) -> tuple[list[int], list[float]]:
    """BatchGetMetrics' answer for one query: `stat` of the points in each period
    (`IterationNumber`: per step; `OneMinute`, `FiveMinute`, `OneHour`: per time bucket),
    with x the step or the bucket's start in epoch seconds."""
    width = {"OneMinute": 60, "FiveMinute": 300, "OneHour": 3600}.get(period)
    buckets: dict[int, list[list[Any]]] = {}
    for point in series["points"]:
        timestamp, step, _ = point
        if (start is not None and timestamp < start) or (end is not None and timestamp > end):
            continue
        if width is None and x_axis == "IterationNumber":
            key = -1 if step is None else int(step)
        else:
            key = int(timestamp // (width or 1) * (width or 1))
        buckets.setdefault(key, []).append(point)
    xs, ys = [], []
    for key in sorted(buckets):
        inner = add(None, ((p[0], p[1], p[2]) for p in buckets[key]))
        xs.append(key)
        ys.append(float(summary(inner)[stat]))
    return xs, ys
