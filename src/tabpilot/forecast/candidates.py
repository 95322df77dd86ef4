"""Forecasting candidates: statsforecast's local models and one global LightGBM model.

Every candidate answers the same two calls on histories (`{item: pd.Series indexed by
timestamp}`): `forecast(histories)` fits on them and forecasts (the backtest's call, once
per window), and `fit(histories)` then `predict(histories)` (the saved model's: local
models keep their fitted specification per item and re-apply it to a new history through
statsforecast's `forward`, the global model applies its booster). Both return
`{item: array (horizon, 1 + k)}`: the mean, then the k quantiles.

NPTS (forecast/npts.py) samples past values; its quantiles are the samples'.
Known-in-advance covariates reach the global model only (`uses_covariates`): the local
models forecast each target from its own past.

Quantiles come from each statistical model's prediction intervals (a central interval at
level L gives the quantiles (1 -/+ L/100) / 2); the Croston family and the global model
have none, so theirs are conformal: the errors of a forecast made `horizon` points earlier.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabpilot.forecast.gbm import GlobalBoosting
from tabpilot.forecast.npts import NPTS

log = logging.getLogger("tabpilot.forecast.candidates")

Histories = dict[str, pd.Series]
Forecasts = dict[str, np.ndarray]
# known-in-advance covariates per item: a frame indexed by timestamp that covers the item's
# history and its horizon after it (forecast/covariates.py); only the global model reads them
Covariates = dict[str, pd.DataFrame]


def recent(y: np.ndarray, season: int) -> np.ndarray:
    """The part of a history a local model fits on: its last max(1000, 10 seasons) points.
    Older points change a local model's forecast little and cost its fit a lot (AutoETS
    on 4 daily series of 4,000 points: 36 s for a 3-window backtest)."""
    return y[-max(1000, 10 * season):]


class OutOfTime(Exception):
    """A candidate's deadline passed, or would pass, before it forecast every item."""


def _check_pace(name: str, started: float, done: int, total: int, deadline: float) -> None:
    """OutOfTime when the items done so far, at their pace, say the rest will not fit: a
    fit cannot be interrupted, so a candidate that cannot finish stops as early as possible."""
    now = time.time()
    if now > deadline or (done and started + (now - started) * total / done > deadline):
        raise OutOfTime(name)


FALLBACK = "Naive"  # statsforecast's model for an item a candidate refuses
PARALLEL_ITEMS = 64  # fewer items than this are fitted in the job's own process


def workers() -> int:
    """The processes a local model's items are spread over: every core (up to 8)."""
    return max(1, min(os.cpu_count() or 1, 8))


def by_chunks(work, histories: Histories, deadline: float) -> tuple[dict, list[str]]:
    """`work(chunk, deadline)` -> (answers per item, items refused) over the items, in one
    process per core when there are PARALLEL_ITEMS or more (local models fit each item
    alone: the items split evenly, long and short series alike, since they are dealt in
    turn); the answers in the items' order. An OutOfTime raised in any process stops the
    whole call."""
    n = workers()
    if n == 1 or len(histories) < PARALLEL_ITEMS:
        return work(histories, deadline)
    from joblib import Parallel, delayed

    items = list(histories)
    chunks = [{i: histories[i] for i in items[k::n]} for k in range(n)]
    merged: dict = {}
    fallen: list[str] = []
    for answers, refused in Parallel(n_jobs=n, backend="loky")(
            delayed(work)(c, deadline) for c in chunks):
        merged.update(answers)
        fallen.extend(refused)
    return {i: merged[i] for i in items}, fallen


@dataclass(frozen=True)
class Setting:
    """What every candidate needs to know about the job."""

    horizon: int
    quantiles: tuple[float, ...]
    season: int
    freq: str  # pandas alias of the grid
    seed: int = 0
    holidays: str | None = None  # a country code: the global model's holiday feature
    covariates: tuple[str, ...] = ()  # known-in-advance columns (the global model's)
    categorical: tuple[str, ...] = ()  # those of them that are categorical (float codes)


def levels_for(quantiles: tuple[float, ...]) -> list[int]:
    """The central interval levels that give `quantiles` (0.1 and 0.9 -> 80)."""
    return sorted({round(abs(2 * q - 1) * 100) for q in quantiles if round(abs(2 * q - 1) * 100) > 0})


def quantiles_from_intervals(out: dict, quantiles: tuple[float, ...]) -> np.ndarray:
    """statsforecast's `mean`, `lo-L`, `hi-L` as (horizon, 1 + k)."""
    cols = [np.asarray(out["mean"], float)]
    for q in quantiles:
        level = round(abs(2 * q - 1) * 100)
        key = "mean" if level == 0 else f"{'lo' if q < 0.5 else 'hi'}-{level}"
        cols.append(np.asarray(out.get(key, out["mean"]), float))
    return np.column_stack(cols)


class LocalModel:
    """One statsforecast model, fitted per item."""

    def __init__(self, name: str, setting: Setting, intervals: bool = True) -> None:
        self.name = name
        self.setting = setting
        self.intervals = intervals  # False: conformal intervals (the Croston family)
        self.fitted_: dict[str, object] = {}
        self.fell_back_: set[str] = set()  # items it refused, forecast by FALLBACK instead

    def _model(self, n: int):
        from statsforecast import models
        from statsforecast.utils import ConformalIntervals

        s, h = self.setting.season, self.setting.horizon
        season = s if n >= 2 * s + 2 else 1
        conformal = None
        if not self.intervals and n > 2 * h + 1:
            conformal = ConformalIntervals(h=h, n_windows=2 if n > 3 * h + 1 else 1)
        build = {
            "SeasonalNaive": lambda: models.SeasonalNaive(season_length=season),
            "AutoETS": lambda: models.AutoETS(season_length=season),
            # a seasonal ARIMA search over a long season (52 weeks) takes minutes per series
            "AutoARIMA": lambda: models.AutoARIMA(season_length=season if season <= 24 else 1),
            "AutoTheta": lambda: models.AutoTheta(season_length=season),
            "AutoCES": lambda: models.AutoCES(season_length=season),
            "CrostonOptimized": lambda: models.CrostonOptimized(prediction_intervals=conformal),
            "ADIDA": lambda: models.ADIDA(prediction_intervals=conformal),
            "IMAPA": lambda: models.IMAPA(prediction_intervals=conformal),
        }[self.name]
        return build()

    def _levels(self, model) -> list[int] | None:
        if (not self.intervals and getattr(model, "prediction_intervals", None) is None
                and type(model).__name__ != FALLBACK):
            return None
        return levels_for(self.setting.quantiles)

    def _answer(self, out: dict) -> np.ndarray:
        return quantiles_from_intervals(out, self.setting.quantiles)

    uses_covariates = False  # statsforecast's local models here take the target alone

    def forecast(self, histories: Histories, deadline: float = float("inf"),
                 covariates: Covariates | None = None) -> Forecasts:
        result, fallen = by_chunks(self._forecast_chunk, histories, deadline)
        self.fell_back_.update(fallen)
        return result

    def _forecast_chunk(self, histories: Histories, deadline: float
                        ) -> tuple[Forecasts, list[str]]:
        result: Forecasts = {}
        fallen: list[str] = []
        started = time.time()
        for item, series in histories.items():
            _check_pace(self.name, started, len(result), len(histories), deadline)
            y = recent(series.to_numpy(float), self.setting.season)
            model = self._model(len(y))
            try:
                out = model.forecast(y=y, h=self.setting.horizon, level=self._levels(model))
            except Exception as exc:  # noqa: BLE001 - statsforecast refuses some series
                out = self._fall_back(item, y, exc, fallen).forecast(
                    y=y, h=self.setting.horizon, level=levels_for(self.setting.quantiles))
            result[item] = self._answer(out)
        _all_failed(self.name, fallen, histories)
        return result, fallen

    def _fall_back(self, item: str, y: np.ndarray, exc: Exception, fallen: list[str]):
        """The model an item gets when this one refuses its history (AutoETS on fewer
        points than it has parameters: "tiny datasets"): Naive, said in the job's notes."""
        from statsforecast import models

        log.debug("%s refused item %s (%d points): %s", self.name, item, len(y), exc)
        fallen.append(item)
        return getattr(models, FALLBACK)()

    def fit(self, histories: Histories, deadline: float = float("inf"),
            covariates: Covariates | None = None) -> LocalModel:
        self.fitted_ = {}  # emptied first: the worker processes get a copy of this model
        self.fitted_, fallen = by_chunks(self._fit_chunk, histories, deadline)
        self.fell_back_.update(fallen)
        return self

    def _fit_chunk(self, histories: Histories, deadline: float
                   ) -> tuple[dict[str, object], list[str]]:
        fitted: dict[str, object] = {}
        fallen: list[str] = []
        for item, series in histories.items():
            if time.time() > deadline:
                raise OutOfTime(self.name)
            y = recent(series.to_numpy(float), self.setting.season)
            try:
                fitted[item] = self._model(len(y)).fit(y=y)
            except Exception as exc:  # noqa: BLE001 - statsforecast refuses some series
                fitted[item] = self._fall_back(item, y, exc, fallen).fit(y=y)
        _all_failed(self.name, fallen, histories)
        return fitted, fallen

    def predict(self, histories: Histories, covariates: Covariates | None = None) -> Forecasts:
        """Each item's fitted specification applied to its new history; an item not seen
        in training is fitted on its history now (Naive when the model refuses it)."""
        result = {}
        for item, series in histories.items():
            y = recent(series.to_numpy(float), self.setting.season)
            fitted = self.fitted_.get(item)
            try:
                if fitted is None or not hasattr(fitted, "forward"):
                    model = self._model(len(y))
                    out = model.forecast(y=y, h=self.setting.horizon, level=self._levels(model))
                else:
                    model = copy.deepcopy(fitted)
                    out = model.forward(y=y, h=self.setting.horizon, level=self._levels(model))
            except Exception as exc:  # noqa: BLE001 - statsforecast refuses some series
                out = self._fall_back(item, y, exc, []).forecast(
                    y=y, h=self.setting.horizon, level=levels_for(self.setting.quantiles))
            result[item] = self._answer(out)
        return result


def _all_failed(name: str, fallen: list[str], histories: Histories) -> None:
    """A model that refuses every item is not a candidate: its own error, not Naive's
    forecasts under its name."""
    if fallen and len(fallen) == len(histories) and len(histories) > 1:
        raise ValueError(f"{name} refused every one of the {len(histories)} series")


class GlobalModel:
    """The global LightGBM model (forecast/gbm.py) behind the candidate interface."""

    uses_covariates = True  # their values at each forecast step are features

    def __init__(self, setting: Setting) -> None:
        self.name = "LightGBM"
        self.setting = setting
        self.model_: GlobalBoosting | None = None

    def forecast(self, histories: Histories, deadline: float = float("inf"),
                 covariates: Covariates | None = None) -> Forecasts:
        return self.fit(histories, deadline, covariates).predict(histories, covariates)

    def fit(self, histories: Histories, deadline: float = float("inf"),
            covariates: Covariates | None = None) -> GlobalModel:
        s = self.setting
        self.model_ = GlobalBoosting(s.horizon, s.quantiles, s.season, s.freq, s.seed,
                                     getattr(s, "holidays", None),
                                     tuple(getattr(s, "covariates", ())),
                                     tuple(getattr(s, "categorical", ())))
        self.model_.fit(histories, deadline, covariates)
        return self

    def predict(self, histories: Histories, covariates: Covariates | None = None) -> Forecasts:
        assert self.model_ is not None, "fit first"
        return self.model_.predict(histories, covariates)


def clip_non_negative(forecasts: Forecasts, histories: Histories) -> Forecasts:
    """Forecasts of items whose history is never negative (counts, sales) floored at 0:
    a negative quantile there only adds loss, and reads as nonsense."""
    for item, values in forecasts.items():
        if float(histories[item].min()) >= 0:
            np.maximum(values, 0, out=values)
    return forecasts


STATISTICAL = ("SeasonalNaive", "AutoTheta", "AutoETS", "AutoCES", "AutoARIMA")
INTERMITTENT = ("CrostonOptimized", "ADIDA", "IMAPA")
ALL = (*STATISTICAL, "NPTS", "LightGBM", *INTERMITTENT)
# the order candidates run in, by their usual cost (a short time limit keeps the cheap ones)
_ORDER = ("SeasonalNaive", "NPTS", "AutoTheta", "LightGBM", "AutoETS", "AutoCES",
          *INTERMITTENT, "AutoARIMA")


def is_intermittent(histories: Histories) -> bool:
    """Whether the series are mostly zeros (over a third of the points, on average): then
    the Croston family is worth trying."""
    shares = [float((s.to_numpy() == 0).mean()) for s in histories.values()]
    return bool(shares) and float(np.mean(shares)) > 1 / 3


def candidates_for(setting: Setting, histories: Histories,
                   names: list[str] | None = None) -> list[LocalModel | GlobalModel | NPTS]:
    """The candidates to try, cheapest first (SeasonalNaive, the baseline, always)."""
    wanted = set(names) if names else {
        *STATISTICAL, "NPTS", "LightGBM", *(INTERMITTENT if is_intermittent(histories) else ())}
    wanted.add("SeasonalNaive")
    out: list[LocalModel | GlobalModel | NPTS] = []
    for name in [n for n in _ORDER if n in wanted]:
        if name == "LightGBM":
            out.append(GlobalModel(setting))
        elif name == "NPTS":
            out.append(NPTS(setting))
        else:
            out.append(LocalModel(name, setting, intervals=name not in INTERMITTENT))
    return out
