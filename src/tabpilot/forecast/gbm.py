"""A global LightGBM forecaster: one booster over every item's lags, window means and
calendar, applied recursively over the horizon.

Per-item scaling is per window: each row's lags and target are divided by the mean level
of the `window` points before it, so one booster learns shapes shared by items of any
size, and a trend (which trees cannot extrapolate) becomes a ratio they can. Quantiles are
conformal: the booster is also fitted on the histories without their last `horizon`
points, forecasts them, and the quantiles of those scaled absolute errors (pooled over
items, spread as sqrt(step)) are added to or taken from the forecast.

Known-in-advance covariates (forecast/covariates.py) are features too: each row gets their
values at its own timestamp, unscaled (trees split on any scale), so a forecast step reads
the covariates' future values, which the caller must give for the whole horizon. A value
left missing (filling `none`) goes down the booster's learned missing-value branch. A
categorical covariate's codes are LightGBM categories (splits on sets of levels, not on
their order).
"""

from __future__ import annotations

import functools
import time

import numpy as np
import pandas as pd

# (min_data_per_group and cat_smooth act on categorical covariates only: LightGBM's 100 rows
# per level would forbid any split on the levels of a short history)
_PARAMS = {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 10,
           "subsample": 0.9, "subsample_freq": 1, "colsample_bytree": 0.9, "verbose": -1,
           "n_jobs": 1, "min_data_per_group": 10, "cat_smooth": 1.0}


def holiday_counts(ds: pd.DatetimeIndex, freq: str, country: str) -> np.ndarray:
    """The number of `country`'s public holidays in each period [ds, ds + freq): 0 or 1 for
    days and hours (an hour counts its day's), more for weeks and months. The `holidays`
    package holds the rules, offline."""
    day = ds.normalize()
    end = (ds + pd.tseries.frequencies.to_offset(freq)).normalize()
    end = end.where(end > day, day + pd.Timedelta(days=1))  # sub-daily: the day itself
    dates = _holiday_dates(country, int(day.year.min()), int(end.year.max()))
    lo = np.searchsorted(dates, day.to_numpy().astype("datetime64[D]"))
    hi = np.searchsorted(dates, end.to_numpy().astype("datetime64[D]"))
    return (hi - lo).astype(float)


@functools.lru_cache(maxsize=64)
def _holiday_dates(country: str, first: int, last: int) -> np.ndarray:
    """The sorted holiday dates of years first..last (cached: the recursive forecast asks
    for one period at a time, and building a country's calendar takes a while)."""
    import holidays

    found = holidays.country_holidays(country, years=range(first, last + 1))
    return np.array(sorted(found), dtype="datetime64[D]")


RECENT_ROWS = 2000  # training rows per item: the most recent (older ones cost, rarely help)


class GlobalBoosting:
    def __init__(self, horizon: int, quantiles: tuple[float, ...], season: int, freq: str,
                 seed: int = 0, holidays: str | None = None,
                 covariates: tuple[str, ...] = (), categorical: tuple[str, ...] = ()) -> None:
        self.horizon = horizon
        self.quantiles = tuple(quantiles)
        self.season = season
        self.freq = freq
        self.seed = seed
        self.holidays = holidays  # HolidayConfig's country: one more calendar feature
        self.covariates = tuple(covariates)  # known-in-advance columns, in feature order
        self.categorical = tuple(categorical)  # those of them that are categorical

    def _lags(self, shortest: int) -> list[int]:
        s = self.season
        wanted = {1, 2, 3, 4, 5, 6, 7, s, s + 1, 2 * s} if s > 1 else {1, 2, 3, 4, 5, 6, 7, 8}
        limit = max(2, shortest // 2)
        return sorted(lag for lag in wanted if lag <= limit)

    def _calendar(self, ds: pd.DatetimeIndex) -> np.ndarray:
        columns = [ds.month, ds.dayofweek, ds.hour, ds.day, ds.minute]
        country = getattr(self, "holidays", None)  # None in models saved before it existed
        if country:
            columns.append(holiday_counts(ds, self.freq, country))
        return np.column_stack(columns).astype(float)

    def _known(self, item: str, ds: pd.DatetimeIndex, covariates) -> np.ndarray:
        """The covariates' values of `item` at `ds`, (len(ds), k); NaN where not given."""
        names = getattr(self, "covariates", ())  # () in models saved before covariates
        if not names:
            return np.empty((len(ds), 0))
        if not covariates or item not in covariates:
            return np.full((len(ds), len(names)), np.nan)
        return covariates[item].reindex(ds)[list(names)].to_numpy(float)

    def _rows(self, y: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features of the points at positions `t` of `y` (scaled), and their scales."""
        w = self.window_
        level = np.stack([np.abs(y[i - w:i]).mean() for i in t])
        level = np.where(level > 0, level, 1.0)
        lags = np.stack([y[t - lag] for lag in self.lags_], axis=1) / level[:, None]
        means = np.stack([[y[i - k:i].mean() for k in (2, w)] for i in t]) / level[:, None]
        return np.column_stack([lags, means]), level

    def fit(self, histories: dict[str, pd.Series], deadline: float = float("inf"),
            covariates=None) -> GlobalBoosting:
        shortest = min(len(s) for s in histories.values())
        self.lags_ = self._lags(shortest - self.horizon)
        self.window_ = max(2, min(max(self.season, 4), max(self.lags_)))
        self.start_ = max(max(self.lags_), self.window_)
        self.booster_ = self._fit_booster(histories, covariates)
        if time.time() > deadline:
            from tabpilot.forecast.candidates import OutOfTime

            raise OutOfTime("LightGBM")
        self.offsets_ = self._calibrate(histories, covariates)
        return self

    def _fit_booster(self, histories: dict[str, pd.Series], covariates=None):
        import lightgbm as lgb

        X, Y = [], []
        for item, series in histories.items():
            y = series.to_numpy(float)
            t = np.arange(max(self.start_, len(y) - RECENT_ROWS), len(y))
            if len(t) == 0:
                continue
            feats, level = self._rows(y, t)
            X.append(np.column_stack([feats, self._calendar(series.index[t]),
                                      self._known(item, series.index[t], covariates)]))
            Y.append(y[t] / level)
        X = np.vstack(X)
        names = list(self.covariates)
        categorical = [X.shape[1] - len(names) + names.index(c)
                       for c in getattr(self, "categorical", ())]
        model = lgb.LGBMRegressor(random_state=self.seed, **_PARAMS)
        model.fit(X, np.concatenate(Y), categorical_feature=categorical or "auto")
        return model

    def _recursive(self, booster, histories: dict[str, pd.Series], covariates=None
                   ) -> dict[str, np.ndarray]:
        """The mean forecast of every item, one step at a time over the horizon (all items
        at each step in one call)."""
        items = list(histories)
        ys = {i: histories[i].to_numpy(float) for i in items}
        futures = {i: pd.date_range(histories[i].index[-1], periods=self.horizon + 1,
                                    freq=self.freq)[1:] for i in items}
        known = {i: self._known(i, futures[i], covariates) for i in items}
        for step in range(self.horizon):
            rows, levels = [], []
            for i in items:
                y = ys[i]
                feats, level = self._rows(y, np.array([len(y)]))
                rows.append(np.column_stack([feats, self._calendar(futures[i][step:step + 1]),
                                             known[i][step:step + 1]]))
                levels.append(level)
            pred = booster.predict(np.vstack(rows)) * np.concatenate(levels)
            for i, p in zip(items, pred, strict=True):
                ys[i] = np.append(ys[i], p)
        return {i: ys[i][-self.horizon:] for i in items}

    def _calibrate(self, histories: dict[str, pd.Series], covariates=None) -> np.ndarray:
        """Per quantile, the scaled error quantile at step 1 (later steps: x sqrt(step))."""
        h = self.horizon
        cut = {i: s.iloc[:-h] for i, s in histories.items() if len(s) - h > self.start_ + 2}
        if not cut:
            return np.zeros(len(self.quantiles))
        booster = self._fit_booster(cut, covariates)
        pred = self._recursive(booster, cut, covariates)
        steps = np.sqrt(np.arange(1, h + 1))
        errors = []
        for i, p in pred.items():
            truth = histories[i].to_numpy(float)[-h:]
            scale = np.abs(cut[i].to_numpy(float)[-self.window_:]).mean() or 1.0
            errors.append((truth - p) / scale / steps)
        # symmetric in |error|: a few windows' signed errors share one bias, which
        # would shift every quantile the same way
        pooled = np.abs(np.concatenate(errors))
        q = np.asarray(self.quantiles)
        return np.sign(q - 0.5) * np.quantile(pooled, np.abs(2 * q - 1))

    def predict(self, histories: dict[str, pd.Series], covariates=None
                ) -> dict[str, np.ndarray]:
        short = [i for i, s in histories.items() if len(s) < self.start_ + 1]
        if short:
            from tabpilot.errors import DataError

            raise DataError(f"item {short[0]!r} has {len(histories[short[0]])} points of history; "
                            f"this model reads the last {self.start_ + 1}, pass at least those")
        mean = self._recursive(self.booster_, histories, covariates)
        steps = np.sqrt(np.arange(1, self.horizon + 1))
        out = {}
        for i, m in mean.items():
            scale = np.abs(histories[i].to_numpy(float)[-self.window_:]).mean() or 1.0
            q = m[:, None] + scale * steps[:, None] * self.offsets_[None, :]
            out[i] = np.column_stack([m, q])
        return out
