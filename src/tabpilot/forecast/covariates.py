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

A covariate is numeric or categorical (a promotion's kind, a store's type, a holiday flag).
A categorical one travels as float codes of its levels (NaN: missing; one code past the
known ones: a level the job never saw), so every frame here stays numeric; the booster treats those columns as
categories. A missing level is never guessed: `none` and `zero` leave it missing, a level
of its own, and a numeric filling method is refused (request.check_categorical).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from tabpilot.errors import DataError, shown
from tabpilot.forecast.request import ForecastRequest, check_categorical

# a column is inferred categorical when at most this share of its values read as numbers;
# more than that is a numeric column with a few bad cells, which is refused, not guessed at
MOSTLY_NUMERIC = 0.9


def _numbers(column: pd.Series) -> tuple[pd.Series, pd.Series, int]:
    """`column` read as numbers, where it holds a value that does not read as one (empty
    cells do not), and how many values it holds."""
    values = pd.to_numeric(column, errors="coerce")
    given = column.notna() & (column.astype(str).str.strip() != "")
    return values, values.isna() & given, int(given.sum())


def _as_numeric(column: pd.Series, name: str, values: pd.Series, bad: pd.Series) -> pd.Series:
    if bad.any():
        row = int(np.argmax(bad.to_numpy()))
        raise DataError(f"covariate column {shown(name)} is numeric but row {row + 1} holds "
                        f"{shown(column.iloc[row])}; give a number there (or leave it empty), "
                        "or train with the column named categorical")
    return values.astype(float)


def numeric(column: pd.Series, name: str) -> pd.Series:
    """A numeric covariate's column as floats (empty -> NaN), or one DataError line."""
    values, bad, _ = _numbers(column)
    return _as_numeric(column, name, values, bad)


def level(value: object) -> str | None:
    """The text of one categorical value, the same however it was read: True, "TRUE" and
    "true" are "true"; 3, 3.0 and "3" are "3"; None for a missing one."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer | float | np.floating):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    text = str(value).strip()
    if not text:
        return None
    if text.lower() in ("true", "false"):
        return text.lower()
    try:
        number = float(text)
    except ValueError:
        return text
    return level(number) if math.isfinite(number) else text


def encode(column: pd.Series, name: str, levels: list[str] | None, infer: bool
           ) -> tuple[pd.Series, list[str] | None]:
    """One covariate as floats, and its levels when it is categorical (None: numeric).

    `levels` given (a trained model's): the codes of those, NaN for a missing value and
    len(levels) for one never seen. [] : categorical, its levels the values seen here,
    sorted. None: numeric, or with `infer` (a training table) categorical when at most
    MOSTLY_NUMERIC of its values read as numbers."""
    if levels is None:
        values, bad, given = _numbers(column)
        if not infer or not bad.any() or given - int(bad.sum()) > MOSTLY_NUMERIC * given:
            return _as_numeric(column, name, values, bad), None
        levels = []
    text = column.map(level)
    if not levels:
        levels = sorted(set(text.dropna()))
    codes = {value: float(code) for code, value in enumerate(levels)}
    # a level never seen gets a code of its own past the known ones: given, so no filling
    # touches it, and the booster, which never split on it, routes it as a missing one
    unseen = text.notna() & ~text.isin(codes)
    return text.map(codes).where(~unseen, float(len(levels))).astype(float), list(levels)


def encode_all(table: pd.DataFrame, request: ForecastRequest, training: bool
               ) -> tuple[dict[str, pd.Series], dict[str, list[str]]]:
    """Every covariate of `table` as floats, and the levels of the categorical ones (a
    training table's inferred ones included: ConfigError when their filling or aggregation
    is numeric)."""
    columns, categories = {}, {}
    for c in request.covariates:
        given = request.covariate_categories.get(c)
        columns[c], levels = encode(table[c], c, given, infer=training)
        if levels is not None:
            if given is None:  # inferred: the request's own check never saw it
                check_categorical(c, request.covariate_fill(c),
                                  request.covariate_aggregation.get(c))
            categories[c] = levels
    return columns, categories


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


def categorical_note(column: str, levels: list[str], asked: bool) -> str:
    """What the job says of one categorical covariate: why it is one, and its levels."""
    some = ", ".join(map(shown, levels[:6])) + (f" and {len(levels) - 6} more"
                                                if len(levels) > 6 else "")
    why = "as asked" if asked else "its values are not numbers"
    return (f"covariate {column} is categorical ({why}): {len(levels)} "
            f"level{'s' * (len(levels) != 1)}, {some or 'none seen'}; a forecast's level "
            "not among them is read as the model reads a missing one")


def fill_history(rows: pd.DataFrame, grid: pd.DatetimeIndex, request: ForecastRequest
                 ) -> pd.DataFrame:
    """One item's covariates on its grid (rows indexed by ds), each filled by its rules."""
    out = rows.reindex(grid)[list(request.covariates)].astype(float)
    for name in request.covariates:
        if name in request.covariate_categories:
            continue  # a missing level stays missing (none and zero alike)
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
            _futurefill(ahead, name, past[name].to_numpy(float), request, uid, grid)
        out[uid] = pd.concat([past, ahead])
    return out


def _futurefill(ahead: pd.DataFrame, name: str, observed: np.ndarray,
                request: ForecastRequest, uid: str, grid: pd.DatetimeIndex) -> None:
    rule = request.covariate_fill(name)
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
    if rule.futurefill != "none" and name not in request.covariate_categories:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ahead.loc[missing, name] = _statistic(observed, rule.futurefill, rule.value)
