"""NPTS: non-parametric time series forecasting (GluonTS' NPTSPredictor, Amazon Forecast's
NPTS), in numpy.

Each future value is one of the series' own past values, drawn at random with weights that
decay exponentially with distance: index i is drawn for step t with weight
exp(-decay * (t - i)). The seasonal variant draws only from the same phase of the season
(t - i a multiple of `season`) and counts distance in seasons, so Mondays are forecast from
past Mondays. Each sample path appends what it drew and draws the next step from that
longer history, as GluonTS does, so a path can wander as far as the history has.

Why it is here: it makes no assumption on the distribution (its quantiles are the
history's own values), so it copes with intermittent, spiky or bounded series where the
parametric intervals of ETS or ARIMA are badly shaped, and it is cheap. The forecast is
`samples` paths; the mean and each quantile are taken over them per step, so the quantiles
never cross. A seed makes the draws repeatable: each item's generator is seeded from the
job's seed and the item's name, so an item's forecast does not depend on which other items
are forecast with it.
"""

from __future__ import annotations

import time
import zlib

import numpy as np

SAMPLES = 200  # paths per item: quantile estimates at p10/p90 settle by then
CONTEXT = 1000  # past points drawn from; older ones have negligible weight anyway


def _generator(seed: int, item: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(item.encode())])


def sample_paths(y: np.ndarray, horizon: int, season: int = 1, decay: float = 1.0,
                 samples: int = SAMPLES, rng: np.random.Generator | None = None) -> np.ndarray:
    """`samples` future paths of `horizon` steps after `y`, as (samples, horizon).

    `season` > 1 with at least one whole season of history: the seasonal variant. `decay`
    is the kernel's rate per step (per season in the seasonal variant); 0 draws uniformly
    (the "climatological" forecaster)."""
    y = np.asarray(y, float)[-CONTEXT:]
    y = y[~np.isnan(y)]
    if len(y) == 0:
        raise ValueError("NPTS needs at least one observed value")
    rng = rng if rng is not None else np.random.default_rng(0)
    n = len(y)
    seasonal = season > 1 and n >= season
    paths = np.empty((samples, n + horizon))
    paths[:, :n] = y
    rows = np.arange(samples)
    for t in range(n, n + horizon):
        if seasonal:
            past = np.arange(t - season, -1, -season)[::-1]  # same phase, oldest first
            distance = (t - past) / season
        else:
            past = np.arange(t)
            distance = t - past
        weights = np.exp(-decay * (distance - distance.min()))
        chosen = rng.choice(past, size=samples, p=weights / weights.sum())
        paths[:, t] = paths[rows, chosen]
    return paths[:, n:]


def summarize(paths: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """(horizon, 1 + k): the mean of the paths per step, then each quantile (sorted, so
    never crossing)."""
    qs = np.quantile(paths, sorted(quantiles), axis=0).T  # (horizon, k)
    return np.column_stack([paths.mean(axis=0), qs])


class NPTS:
    """The NPTS candidate: local, nothing to fit (the history is the model), so `fit` only
    checks and `predict` draws from the history it is given."""

    name = "NPTS"
    uses_covariates = False  # it draws from the target's own past only

    def __init__(self, setting, decay: float = 1.0, samples: int = SAMPLES) -> None:
        self.setting = setting
        self.decay = decay
        self.samples = samples

    def _one(self, item: str, y: np.ndarray) -> np.ndarray:
        s = self.setting
        paths = sample_paths(y, s.horizon, s.season, self.decay, self.samples,
                             _generator(s.seed, item))
        return summarize(paths, s.quantiles)

    def forecast(self, histories, deadline: float = float("inf"), covariates=None) -> dict:
        from tabpilot.forecast.candidates import _check_pace

        out: dict[str, np.ndarray] = {}
        started = time.time()
        for item, series in histories.items():
            _check_pace(self.name, started, len(out), len(histories), deadline)
            out[item] = self._one(item, series.to_numpy(float))
        return out

    def fit(self, histories, deadline: float = float("inf"), covariates=None) -> NPTS:
        return self

    def predict(self, histories, covariates=None) -> dict:
        return self.forecast(histories)
