"""Time-series forecasting (Autopilot's TimeSeriesForecastingJobConfig).

`request.py` the request; `series.py` rows -> regular series (the bad-input checks);
`candidates.py` + `gbm.py` + `npts.py` the models; `covariates.py` known-in-advance
covariates (their filling, their future rows); `backtest.py` expanding-origin windows;
`metrics.py` Autopilot's forecasting metrics; `ensemble.py` greedy weights per quantile;
`model.py` the model directory and its predictor; `job.py` a job end to end;
`recording.py` its store rows; `views.py` its Describe / ListCandidates shapes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from tabpilot.forecast.job import ForecastResult
    from tabpilot.forecast.model import ForecastPredictor

__all__ = ["fit", "load"]


def fit(data: str | Path | pd.DataFrame, workspace: str | Path | None = None,
        **settings: Any) -> ForecastResult:
    """A forecasting job on `data` (a path, URI or DataFrame), with the request's settings
    by name: `fit("sales.csv", target="y", timestamp="ts", item_id="store", frequency="1D",
    horizon=14)`; the others (quantiles, aggregation, filling, objective, time_limit,
    candidates, name, covariates, covariate_filling...) are `ForecastRequest`'s. An
    unknown or bad setting is one ConfigError line, before the table is read."""
    from tabpilot.config import workspace_path
    from tabpilot.data import read_table
    from tabpilot.forecast.job import fit as run
    from tabpilot.forecast.request import ForecastRequest

    request = ForecastRequest.build(**settings)
    where = "<DataFrame>" if not isinstance(data, str | Path) else str(data)
    return run(read_table(data), request, workspace_path(workspace), input_uri=where)


def load(directory: str | Path) -> ForecastPredictor:
    """The predictor of a forecasting model directory, verified against its manifest;
    `.predict(history)` forecasts the horizon after each item's history."""
    from tabpilot.forecast.model import load as read

    return read(directory)[0]
