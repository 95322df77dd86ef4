"""Known-in-advance covariates: prices, promotions, planned events, known for the horizon.

They travel in the same table as the target, in long form. A row after an item's last
target value whose target is empty is a *future* row: it carries the covariates of a period
to be forecast (Autopilot's way: the history and the future rows in one file). Training
sets such rows aside; forecasting reads the horizon's covariates from them.

On each item's regular grid a covariate is filled by its own `CovariateFilling`
(frontfill / middlefill / backfill relative to its own first and last observed value, as
the target's are to the target's), and in the horizon by `futurefill`. Only the global
gradient-boosting model reads covariates; the local models forecast each target from its
own past, and the job says so.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from tabpilot.errors import DataError, shown
from tabpilot.forecast.request import CovariateFilling, ForecastRequest


def numeric(column: pd.Series, name: str) -> pd.Series:
    """A covariate column as floats (empty -> NaN), or one DataError line."""
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() & column.notna() & (column.astype(str).str.strip() != "")
    if bad.any():
        row = int(np.argmax(bad.to_numpy()))
        raise DataError(f"covariate column {shown(name)} is not numeric: row {row + 1} holds "
                        f"{shown(column.iloc[row])}; covariates must be numbers (encode a "
                        "category as 0/1 columns)")
    return values.astype(float)


def split_future(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(history rows, future rows) of a long frame `unique_id, ds, y, <covariates>`: future
    rows come after their item's last target value and have no target."""
    observed = frame.loc[frame["y"].notna()]
    last = observed.groupby("unique_id", sort=False)["ds"].max()
    after = frame["ds"] > frame["unique_id"].map(last)  # NaN (no target at all) -> False
    future = after & frame["y"].isna()
    return frame.loc[~future], frame.loc[future].drop(columns="y")


def _statistic(observed: np.ndarray, method: str, constant: float | None) -> float:
    if method == "zero":
        return 0.0
    if method == "value":
        return float(constant if constant is not None else 0.0)
    observed = observed[~np.isnan(observed)]
    if len(observed) == 0:
        return float("nan")  # nothing to take a statistic of: the value stays missing
    return float({"mean": np.mean, "median": np.median, "min": np.min,
                  "max": np.max}[method](observed))


def fill_history(rows: pd.DataFrame, grid: pd.DatetimeIndex, request: ForecastRequest
                 ) -> pd.DataFrame:
    """One item's covariates on its grid (rows indexed by ds), each filled by its rules."""
    out = rows.reindex(grid)[list(request.covariates)].astype(float)
    for name in request.covariates:
        rule = request.covariate_fill(name)
        values = out[name].to_numpy(copy=True)
        seen = np.flatnonzero(~np.isnan(values))
        if len(seen) == 0:
            first, last = len(values), -1
        else:
            first, last = seen[0], seen[-1]
        pos = np.arange(len(values))
        missing = np.isnan(values)
        observed = values[~missing]  # statistics of the given values, not of earlier fills
        for where, mask in (("frontfill", pos < first), ("backfill", pos > last),
                            ("middlefill", (pos > first) & (pos < last))):
            method = getattr(rule, where)
            if method != "none" and (mask & missing).any():
                values[mask & missing] = _statistic(observed, method, rule.value)
        out[name] = values
    return out


def frames(series_frame: pd.DataFrame, columns: list[str]) -> dict[str, pd.DataFrame]:
    """Each item's covariates, indexed by timestamp, from a prepared series frame."""
    return {uid: g.set_index("ds")[columns]
            for uid, g in series_frame.groupby("unique_id", sort=False)}


def with_future(series_frame: pd.DataFrame, future: pd.DataFrame | None,
                request: ForecastRequest, freq: str) -> dict[str, pd.DataFrame]:
    """Each item's covariates over its history and the `horizon` periods after it: the
    future rows' values, filled by `futurefill`; DataError for a value still missing whose
    futurefill is unset."""
    columns = list(request.covariates)
    offset = pd.tseries.frequencies.to_offset(freq)
    given = {uid: g.set_index("ds")[columns]
             for uid, g in (future if future is not None else
                            pd.DataFrame(columns=["unique_id", "ds", *columns])
                            ).groupby("unique_id", sort=False)}
    out = {}
    for uid, past in frames(series_frame, columns).items():
        grid = pd.date_range(past.index[-1], periods=request.horizon + 1, freq=offset)[1:]
        ahead = (given[uid].reindex(grid) if uid in given
                 else pd.DataFrame(np.nan, index=grid, columns=columns)).astype(float)
        for name in columns:
            _futurefill(ahead, name, past[name].to_numpy(float), request.covariate_fill(name),
                        uid, grid)
        out[uid] = pd.concat([past, ahead])
    return out


def _futurefill(ahead: pd.DataFrame, name: str, observed: np.ndarray, rule: CovariateFilling,
                uid: str, grid: pd.DatetimeIndex) -> None:
    missing = ahead[name].isna().to_numpy()
    if not missing.any():
        return
    if rule.futurefill is None:
        from tabpilot.forecast.series import SINGLE

        who = "" if uid == SINGLE else f" of item {shown(uid)}"
        raise DataError(
            f"covariate {shown(name)}{who} has no value at {grid[missing][0]} ({int(missing.sum())} "
            f"of the {len(grid)} forecast periods); send each covariate's future values as rows "
            "after the history with the target empty, or set its futurefill")
    if rule.futurefill != "none":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ahead.loc[missing, name] = _statistic(observed, rule.futurefill, rule.value)
