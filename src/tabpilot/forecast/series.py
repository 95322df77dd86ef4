"""A table of rows -> regular series: checked, aggregated into periods, gaps filled.

Everything after this module sees one long frame `unique_id, ds, y` in which every series
steps exactly by the request's frequency with no missing value, so the models, the
backtest and the metrics never meet an irregular index. Bad input stops here with one
line that names the column, the item or the timestamp, and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tabpilot.errors import DataError, shown
from tabpilot.forecast.request import ForecastRequest, parse_frequency

MIN_POINTS = 8  # below this no model, and no backtest window, has anything to learn from
SINGLE = "series"  # the unique_id of a table that is one series
_AGG = {"sum": "sum", "avg": "mean", "first": "first", "min": "min", "max": "max"}


@dataclass
class Series:
    """Regular series in long form, and what was done to get them."""

    frame: pd.DataFrame  # unique_id (str), ds (datetime64), y (float), [covariates], sorted
    freq: str  # the pandas offset alias the index steps by
    notes: list[str] = field(default_factory=list)  # aggregation and filling done
    # rows after an item's last target value, target empty: the covariates' future values
    # (unique_id, ds, <covariates>); None without covariates
    future: pd.DataFrame | None = None
    # the categorical covariates' levels, in code order (given or inferred)
    categories: dict[str, list[str]] = field(default_factory=dict)

    @property
    def lengths(self) -> pd.Series:
        return self.frame.groupby("unique_id", sort=False).size()

    def arrays(self) -> dict[str, np.ndarray]:
        """Each series' values, by unique_id, in order."""
        return {uid: g["y"].to_numpy(float) for uid, g in self.frame.groupby("unique_id", sort=False)}


def prepare(table: pd.DataFrame, request: ForecastRequest, training: bool = True) -> Series:
    """The regular series of `table`, or DataError. With `training`, the series must also
    hold enough points for `request.horizon` (a history to forecast from need not)."""
    from tabpilot.forecast import covariates

    _check_columns(table, request)
    known, categories = covariates.encode_all(table, request, training)
    notes: list[str] = []
    if training:
        notes += [covariates.categorical_note(c, levels, c in request.covariate_categories)
                  for c, levels in categories.items()]
    if categories != request.covariate_categories:
        request = request.model_copy(update={"covariate_categories": categories})
    frame = pd.DataFrame({
        "unique_id": _ids(table, request),
        "ds": _timestamps(table[request.timestamp], request.timestamp),
        "y": _numeric_target(table[request.target], request.target),
        **known,
    })
    freq = grid_frequency(frame["ds"], request.frequency)
    future = None
    if request.covariates:
        frame, future = covariates.split_future(frame)
        if training and len(future):
            notes.append(f"{len(future)} rows after their item's last target value set "
                         "aside (future covariates are for forecasting)")
    if request.aggregation is not None:
        frame = _aggregate(frame, freq, request, notes)
        if future is not None and len(future):
            future = _aggregate(future, freq, request, [])
    else:
        _check_unique(frame, request)
        _check_on_grid(frame, freq, request.frequency)
        if future is not None:
            _check_unique(future, request)
    frame = _fill(frame.sort_values(["unique_id", "ds"]), freq, request, notes)
    _check_lengths(frame, request, training)
    return Series(frame.reset_index(drop=True), freq, notes, future, categories)


def _aggregate(frame: pd.DataFrame, freq: str, request: ForecastRequest,
               notes: list[str]) -> pd.DataFrame:
    """Rows combined into their periods: the target by `aggregation`, each covariate by
    its own (avg unless set)."""
    frame = frame.assign(ds=_to_period_start(frame["ds"], freq))
    how = {c: _AGG[request.covariate_aggregation.get(
        c, "first" if c in request.covariate_categories else "avg")] for c in request.covariates}
    if "y" in frame:
        how = {"y": _AGG[request.aggregation or "sum"], **how}
    before = len(frame)
    out = frame.groupby(["unique_id", "ds"], sort=True).agg(how).reset_index()
    if len(out) < before:
        notes.append(f"{before - len(out)} rows combined into their periods "
                     f"({request.aggregation})")
    return out


def grid_frequency(ds: pd.Series, frequency: str) -> str:
    """The pandas alias of `frequency` anchored the way the data is: months and years at
    their start or their end, as the timestamps are; weeks as 7 days from each series'
    start (M4's weekly series start on different weekdays)."""
    count, unit = parse_frequency(frequency)
    if unit == "W":
        return f"{7 * count}D"
    if unit in ("M", "Y"):
        ends = bool(ds.dropna().dt.is_month_end.all()) if unit == "M" else \
            bool(ds.dropna().dt.is_year_end.all())
        return f"{count}{unit}{'E' if ends else 'S'}"
    return f"{count}{ {'D': 'D', 'H': 'h', 'min': 'min'}[unit] }"


def _check_columns(table: pd.DataFrame, request: ForecastRequest) -> None:
    named = [("target", request.target), ("timestamp", request.timestamp)]
    if request.item_id:
        named.append(("item id", request.item_id))
    named += [("grouping", g) for g in request.grouping]
    named += [("covariate", c) for c in request.covariates]
    for role, column in named:
        if column not in table.columns:
            known = ", ".join(map(str, list(table.columns)[:10]))
            raise DataError(f"{role} column {shown(column)} is not in the table; "
                            f"its columns: {known}")


def _ids(table: pd.DataFrame, request: ForecastRequest) -> pd.Series:
    keys = ([request.item_id] if request.item_id else []) + list(request.grouping)
    if not keys:
        return pd.Series(SINGLE, index=table.index)
    parts = [table[k].astype(str) for k in keys]
    out = parts[0]
    for part in parts[1:]:
        out = out + "|" + part
    return out


def _timestamps(column: pd.Series, name: str) -> pd.Series:
    parsed = pd.to_datetime(column, errors="coerce", format="mixed")
    bad = parsed.isna() & column.notna()
    if bad.any() or parsed.isna().all():
        row = int(np.argmax(bad.to_numpy())) if bad.any() else 0
        raise DataError(f"timestamp column {shown(name)} row {row + 1} holds "
                        f"{shown(column.iloc[row])}, not a date or time; use ISO dates "
                        "such as 2024-01-31 or 2024-01-31 13:00")
    if parsed.isna().any():
        raise DataError(f"timestamp column {shown(name)} has {int(parsed.isna().sum())} empty "
                        "values; every row needs its timestamp")
    return parsed.dt.tz_localize(None) if parsed.dt.tz is not None else parsed


def _numeric_target(column: pd.Series, name: str) -> pd.Series:
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() & column.notna()
    if bad.any():
        row = int(np.argmax(bad.to_numpy()))
        raise DataError(f"target column {shown(name)} is not numeric: row {row + 1} holds "
                        f"{shown(column.iloc[row])}; forecasting needs numbers")
    return values.astype(float)


def _check_unique(frame: pd.DataFrame, request: ForecastRequest) -> None:
    dup = frame.duplicated(["unique_id", "ds"], keep=False)
    if dup.any():
        first = frame[dup].iloc[0]
        if "y" not in frame:  # future rows
            raise DataError(f"{int(dup.sum())} future rows share an (item, timestamp), the "
                            f"first at {first['ds']}; send one row per item and period")
        who = "" if first["unique_id"] == SINGLE else f"item {shown(first['unique_id'])} "
        same = (frame["unique_id"] == first["unique_id"]) & (frame["ds"] == first["ds"])
        raise DataError(f"{int(dup.sum())} rows share an (item, timestamp): {who}has "
                        f"{int(same.sum())} rows at {first['ds']}; "
                        "pass --aggregation sum|avg|first|min|max "
                        "to combine them, or --item-id if the table holds several series")


def _to_period_start(ds: pd.Series, freq: str) -> pd.Series:
    """Each timestamp's period, as the grid's timestamp for it."""
    if freq.endswith(("D", "h", "min")):
        return ds.dt.floor(freq)
    offset = pd.tseries.frequencies.to_offset(freq)
    return ds.map(lambda t: offset.rollback(t.normalize()))


def _check_on_grid(frame: pd.DataFrame, freq: str, frequency: str) -> None:
    offset = pd.tseries.frequencies.to_offset(freq)
    for uid, g in frame.groupby("unique_id", sort=False):
        ds = g["ds"].sort_values()
        grid = pd.date_range(ds.iloc[0], ds.iloc[-1], freq=offset)
        off = ~ds.isin(grid)
        if off.any() or (not offset.is_on_offset(ds.iloc[0]) and not freq.endswith(("D", "h", "min"))):
            where = ds[off].iloc[0] if off.any() else ds.iloc[0]
            who = "" if uid == SINGLE else f" of item {shown(uid)}"
            raise DataError(f"timestamp {where}{who} does not fall on the {frequency} grid "
                            f"that starts at {ds.iloc[0]}; choose the frequency the data has, "
                            "or pass --aggregation to combine rows into periods")


def _fill_value(observed: np.ndarray, method: str, constant: float | None) -> float:
    if method == "zero":
        return 0.0
    if method == "value":
        return float(constant or 0.0)
    return float({"mean": np.nanmean, "median": np.nanmedian, "min": np.nanmin,
                  "max": np.nanmax}[method](observed))


def _fill(frame: pd.DataFrame, freq: str, request: ForecastRequest,
          notes: list[str]) -> pd.DataFrame:
    """Every series on a full grid: gaps inside (middlefill), to the latest end of all
    series (backfill), from the earliest start (frontfill), each by its method."""
    fill = request.filling
    offset = pd.tseries.frequencies.to_offset(freq)
    start, end = frame["ds"].min(), frame["ds"].max()
    parts, counts = [], {"middlefill": 0, "backfill": 0, "frontfill": 0}
    for uid, g in frame.groupby("unique_id", sort=False):
        rows = g.set_index("ds")
        g = g.dropna(subset=["y"])  # an empty target is a missing period, filled below
        if g.empty:
            raise DataError(f"item {shown(uid)} has no target values; drop it or fill them")
        first, last = g["ds"].iloc[0], g["ds"].iloc[-1]
        lo = start if fill.frontfill != "none" else first
        hi = end if fill.backfill != "none" else last
        grid = pd.date_range(lo, hi, freq=offset)
        y = g.set_index("ds")["y"].reindex(grid)
        observed = g["y"].to_numpy(float)
        for where, method in (("frontfill", fill.frontfill), ("middlefill", fill.middlefill),
                              ("backfill", fill.backfill)):
            mask = {"frontfill": grid < first, "backfill": grid > last,
                    "middlefill": (grid >= first) & (grid <= last)}[where] & y.isna().to_numpy()
            if mask.any() and method != "none":
                y[mask] = _fill_value(observed, method, fill.value)
                counts[where] += int(mask.sum())
        if y.isna().any():
            raise DataError(f"{'the series' if uid == SINGLE else f'item {shown(uid)}'} has "
                            f"{int(y.isna().sum())} missing periods (first at "
                            f"{y.index[y.isna().to_numpy()][0]}) and middlefill is none; "
                            "choose a filling method (zero, mean, median, ...)")
        part = pd.DataFrame({"unique_id": uid, "ds": grid, "y": y.to_numpy(float)})
        if request.covariates:
            from tabpilot.forecast.covariates import fill_history

            known = fill_history(rows, grid, request)
            part[list(known.columns)] = known.to_numpy()
        parts.append(part)
    for where, n in counts.items():
        if n:
            notes.append(f"{n} missing periods filled ({where}: {getattr(fill, where)})")
    return pd.concat(parts, ignore_index=True)


def _check_lengths(frame: pd.DataFrame, request: ForecastRequest, training: bool) -> None:
    lengths = frame.groupby("unique_id", sort=False).size()
    shortest, n = lengths.idxmin(), int(lengths.min())
    who = "the series" if shortest == SINGLE else f"item {shown(shortest)}"
    if n < MIN_POINTS:
        raise DataError(f"{who} has {n} points; a series needs at least {MIN_POINTS} "
                        "(drop it, or use a finer frequency)")
    if training and request.horizon > n // 4:
        raise DataError(f"horizon {request.horizon} is longer than a quarter of the shortest "
                        f"series ({who}: {n} points, so at most {n // 4}); shorten --horizon")
