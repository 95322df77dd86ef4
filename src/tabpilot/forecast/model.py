"""The forecasting model directory and its predictor.

    model/
      predictor.pkl   the ForecastPredictor: refitted members and their weights per column
      metadata.json   problem type TimeSeriesForecasting, the request, members, weights, metrics
      manifest.json   sha256 and size of both (artifacts/manifest.py)

The directory is checked with `artifacts.package.verify` (every file listed, no stray
file, no link, every hash equal) before the pickle is opened, like every tabpilot model.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabpilot import __version__
from tabpilot.artifacts import manifest
from tabpilot.artifacts.manifest import METADATA, PREDICTOR
from tabpilot.errors import ConfigError, NotFoundError
from tabpilot.forecast import ensemble
from tabpilot.forecast.candidates import Covariates, Histories, Setting, clip_non_negative
from tabpilot.forecast.request import ForecastRequest
from tabpilot.forecast.series import SINGLE, prepare

PROBLEM_TYPE = "TimeSeriesForecasting"


def quantile_column(q: float) -> str:
    """Autopilot's name of a quantile's column: p10, p50, p5 (0.05)."""
    return f"p{round(q * 100):d}"


class ForecastPredictor:
    """Forecasts the horizon after each item's history: the weighted members' forecasts."""

    def __init__(self, request: ForecastRequest, setting: Setting, members: list,
                 weights: np.ndarray) -> None:
        self.request = request
        self.setting = setting
        self.members = members
        self.weights = weights  # (members, 1 + quantiles)

    @property
    def covariates(self) -> list[str]:
        """The known-in-advance columns whose future values a forecast needs."""
        return list(getattr(self.request, "covariates", []) or [])

    def histories(self, history: pd.DataFrame) -> Histories:
        series = prepare(history, self.request, training=False)
        return {uid: g.set_index("ds")["y"] for uid, g in series.frame.groupby("unique_id", sort=False)}

    def inputs(self, history: pd.DataFrame, future_covariates: pd.DataFrame | None = None
               ) -> tuple[Histories, Covariates | None]:
        """Each item's regular history and, with covariates, their values over the history
        and the horizon (DataError when a future value is missing and not to be filled)."""
        if future_covariates is not None:
            if not self.covariates:
                raise ConfigError("this forecasting model uses no covariates; pass the "
                                  "history only")
            history = pd.concat([history, future_covariates], ignore_index=True)
        series = prepare(history, self.request, training=False)
        hist = {uid: g.set_index("ds")["y"]
                for uid, g in series.frame.groupby("unique_id", sort=False)}
        if not self.covariates:
            return hist, None
        from tabpilot.forecast.covariates import with_future

        return hist, with_future(series.frame, series.future, self.request, series.freq)

    def predict(self, history: pd.DataFrame, future_covariates: pd.DataFrame | None = None
                ) -> pd.DataFrame:
        """One row per item and future period: the item's key columns, the timestamp, the
        mean and each quantile (p10, p50, ...). A model with covariates needs their values
        for the horizon: as rows after each item's history with the target empty, in
        `history` itself or in `future_covariates` (the same columns, target left out)."""
        hist, known = self.inputs(history, future_covariates)
        combined = ensemble.combine([clip_non_negative(m.predict(hist, covariates=known), hist)
                                     for m in self.members], self.weights)
        rows = []
        for item, values in combined.items():
            future = pd.date_range(hist[item].index[-1], periods=self.setting.horizon + 1,
                                   freq=self.setting.freq)[1:]
            frame = pd.DataFrame(values, columns=["mean", *map(quantile_column,
                                                              self.setting.quantiles)])
            frame.insert(0, self.request.timestamp, future)
            for at, (name, value) in enumerate(zip(self._keys(), self._key_values(item),
                                                   strict=True)):
                frame.insert(at, name, value)
            rows.append(frame)
        return pd.concat(rows, ignore_index=True)

    def _keys(self) -> list[str]:
        return ([self.request.item_id] if self.request.item_id else []) + list(self.request.grouping)

    def _key_values(self, item: str) -> list[str]:
        return [] if item == SINGLE else item.split("|", len(self._keys()) - 1)


def save(predictor: ForecastPredictor, metadata: dict[str, Any], directory: str | Path) -> Path:
    """Write the model directory atomically (a temporary one renamed into place)."""
    from tabpilot.artifacts.package import staged

    directory = Path(directory)
    with staged(directory) as tmp:
        with open(tmp / PREDICTOR, "wb") as f:
            pickle.dump(predictor, f, protocol=pickle.HIGHEST_PROTOCOL)
        meta = dict(metadata, problem_type=PROBLEM_TYPE, tabpilot_version=__version__, format=1)
        (tmp / METADATA).write_text(json.dumps(meta, indent=2, default=str))
        manifest.write(tmp, {p.name: manifest.entry(p) for p in tmp.iterdir() if p.is_file()})
    return directory


def load(directory: str | Path) -> tuple[ForecastPredictor, dict[str, Any]]:
    """The verified model's predictor and metadata; ModelIntegrityError before any
    unpickling when a file does not match the manifest."""
    from tabpilot.artifacts.package import verify

    directory = Path(directory)
    verify(directory)
    metadata = json.loads((directory / METADATA).read_text())
    if metadata.get("problem_type") != PROBLEM_TYPE:
        raise NotFoundError(f"{directory} holds a {metadata.get('problem_type')} model, not a "
                            "forecasting one; use `tabpilot predict` for it")
    with open(directory / PREDICTOR, "rb") as f:
        predictor = pickle.load(f)  # verified against the manifest
    if "covariate_categories" not in predictor.request.__dict__:  # saved before them
        predictor.request = ForecastRequest(**predictor.request.__dict__)
    return predictor, metadata
