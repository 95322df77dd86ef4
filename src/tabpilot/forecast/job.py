"""A forecasting job: prepare the series, backtest every candidate, ensemble, refit, save.

    WORKSPACE/jobs/<job>/
      job.json               the request, status, timings, notes, the best candidate
      backtest_results.json  Autopilot's BacktestResults shape: per candidate, per window,
                             the metrics over all items, per item, and wQL per quantile
      leaderboard.json       candidate, objective, every metric, fit seconds (best first)
      model/                 the ensemble refitted on all data (forecast/model.py)

Job names are the tabular jobs' (`jobs.runner.new_job_name`, `names.check`), in the same
`jobs/` folder, so one workspace lists both kinds. The time limit is shared out as the
candidates run, cheapest first: a candidate that cannot finish its backtest in what is
left is skipped, and the job says so; the refit of the ensemble's members always runs.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabpilot import names
from tabpilot.errors import ConfigError, JobExistsError
from tabpilot.forecast import backtest, ensemble
from tabpilot.forecast.candidates import (
    ALL,
    OutOfTime,
    Setting,
    candidates_for,
    clip_non_negative,
)
from tabpilot.forecast.model import ForecastPredictor, save
from tabpilot.forecast.request import ForecastRequest
from tabpilot.forecast.series import prepare

log = logging.getLogger("tabpilot.forecast")
ENSEMBLE = "WeightedEnsemble"
REFIT_SHARE = 0.25  # of the limit kept for refitting the chosen members on all data


@dataclass
class ForecastResult:
    name: str
    folder: Path
    leaderboard: pd.DataFrame  # best first
    best: str
    model_dir: Path
    objective: str
    seconds: float
    notes: list[str] = field(default_factory=list)


def fit(table: pd.DataFrame, request: ForecastRequest, workspace: Path) -> ForecastResult:
    """Run the job end to end; bad input raises before anything is written."""
    started = time.time()
    series = prepare(table, request)
    histories = {uid: g.set_index("ds")["y"]
                 for uid, g in series.frame.groupby("unique_id", sort=False)}
    unknown = sorted(set(request.candidates or ()) - set(ALL))
    if unknown:
        raise ConfigError(f"unknown forecasting candidate {unknown[0]!r}; "
                          f"choose from {', '.join(ALL)}")
    name = _job_name(request, workspace)
    setting = Setting(request.horizon, tuple(request.quantiles), request.season, series.freq,
                      request.seed)
    wins = backtest.windows(histories, request.horizon, request.n_windows, setting.season)
    notes = list(series.notes)
    board = _backtest_all(histories, setting, wins, request, notes,
                          started + request.time_limit * (1 - REFIT_SHARE))
    weights, blended = _ensemble(board, wins, request)
    used = [i for i in range(len(board.kept)) if weights[i].sum() > 0]
    scores = backtest.score(wins, blended, request.quantiles)
    board.rows.append({"candidate": ENSEMBLE, **scores,
                       "fit_seconds": round(sum(board.rows[i]["fit_seconds"] for i in used), 3)})
    board.results[ENSEMBLE] = [_window_result(w, f, request.quantiles)
                               for w, f in zip(wins, blended, strict=True)]
    members = [board.kept[i].fit(histories) for i in used]  # on all data, whatever the time
    leaderboard = (pd.DataFrame(board.rows).sort_values(request.objective, kind="stable")
                   .reset_index(drop=True))
    leaderboard.insert(1, "objective", leaderboard[request.objective])  # whichever it is
    folder = workspace / "jobs" / name
    metadata = {"candidate": ENSEMBLE, "request": request.model_dump(),
                "members": [board.kept[i].name for i in used], "weights": weights[used].tolist(),
                "metrics": scores, "freq": series.freq}
    model_dir = save(ForecastPredictor(request, setting, members, weights[used]), metadata,
                     folder / "model")
    seconds = time.time() - started
    if seconds > request.time_limit:
        notes.append(f"the job ran {seconds:.0f}s, past its {request.time_limit:.0f}s limit "
                     "(the baseline's backtest and the final refit always run)")
    _write(folder, name, request, leaderboard, board.results, notes, seconds, wins)
    return ForecastResult(name, folder, leaderboard, leaderboard.iloc[0]["candidate"], model_dir,
                          request.objective, seconds, notes)


@dataclass
class _Board:
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per candidate scored
    kept: list = field(default_factory=list)  # the candidates scored, in order
    forecasts: list = field(default_factory=list)  # their backtest forecasts, per window
    results: dict[str, list] = field(default_factory=dict)  # BacktestResults per candidate


def _backtest_all(histories, setting: Setting, wins: list[backtest.Window],
                  request: ForecastRequest, notes: list[str], end: float) -> _Board:
    """Every candidate on every window, cheapest first, until `end` (time.time()); the
    first (SeasonalNaive, the baseline every other is measured against) always runs."""
    board = _Board()
    for k, cand in enumerate(candidates_for(setting, histories, request.candidates)):
        t0 = time.time()
        try:
            per_window = []
            for w in wins:
                if per_window and k > 0 and t0 + (time.time() - t0) * len(wins) / len(per_window) > end:
                    raise OutOfTime(cand.name)  # the windows left will not fit, at this pace
                per_window.append(clip_non_negative(
                    cand.forecast(w.train, float("inf") if k == 0 else end), w.train))
        except OutOfTime:
            notes.append(f"{cand.name} skipped: its backtest did not fit the time limit")
            continue
        except Exception as exc:  # a model that fails on these series is left out, said so
            notes.append(f"{cand.name} failed ({type(exc).__name__}: {exc})")
            log.warning("candidate %s failed", cand.name, exc_info=True)
            continue
        scores = backtest.score(wins, per_window, request.quantiles)
        board.rows.append({"candidate": cand.name, **scores,
                           "fit_seconds": round(time.time() - t0, 3)})
        board.kept.append(cand)
        board.forecasts.append(per_window)
        board.results[cand.name] = [_window_result(w, f, request.quantiles)
                                    for w, f in zip(wins, per_window, strict=True)]
    return board


def _ensemble(board: _Board, wins: list[backtest.Window], request: ForecastRequest
              ) -> tuple[np.ndarray, list]:
    """The weights (candidates, 1 + quantiles) and the blended backtest forecasts; the best
    candidate alone when sorting the quantiles made the blend worse than it."""
    weights = ensemble.select(wins, board.forecasts, request.quantiles, request.objective)
    blend = [ensemble.combine([f[k] for f in board.forecasts], weights) for k in range(len(wins))]
    objective = request.objective
    best = min(range(len(board.rows)), key=lambda i: board.rows[i][objective])
    if backtest.score(wins, blend, request.quantiles)[objective] > board.rows[best][objective]:
        weights = np.zeros_like(weights)
        weights[best, :] = 1.0
        blend = board.forecasts[best]
    return weights, blend


def _job_name(request: ForecastRequest, workspace: Path) -> str:
    from tabpilot.jobs.runner import new_job_name

    name = names.check(request.name, "job") if request.name else new_job_name()
    if (workspace / "jobs" / name).exists():
        raise JobExistsError(f"job {name!r} exists in {workspace}; choose another --name")
    return name


def _window_result(window: backtest.Window, forecast, quantiles: list[float]) -> dict[str, Any]:
    return {"Window": window.index,
            "Metrics": backtest.window_metrics(window, forecast, quantiles),
            "Items": backtest.item_metrics(window, forecast, quantiles)}


def _write(folder: Path, name: str, request: ForecastRequest, board: pd.DataFrame,
           results: dict[str, list], notes: list[str], seconds: float,
           wins: list[backtest.Window]) -> None:
    """The job's JSON files (the model directory is written already)."""
    folder.mkdir(parents=True, exist_ok=True)
    best = board.iloc[0]
    job = {"AutoMLJobName": name, "ProblemType": "TimeSeriesForecasting",
           "AutoMLJobStatus": "Completed", "ElapsedSeconds": round(seconds, 1),
           "Request": request.model_dump(), "Notes": notes,
           "BestCandidate": {"CandidateName": best["candidate"],
                             "FinalAutoMLJobObjectiveMetric": {
                                 "MetricName": request.objective,
                                 "Value": float(best[request.objective])},
                             "ModelLocation": str(folder / "model")}}
    (folder / "job.json").write_text(json.dumps(job, indent=2, default=str))
    (folder / "leaderboard.json").write_text(board.to_json(orient="records", indent=2))
    backtests = {"BacktestResults": [
        {"CandidateName": cand, "ObjectiveMetric": request.objective,
         "Windows": [dict(r, TrainEnd={i: str(w.train[i].index[-1]) for i in w.train})
                     for r, w in zip(res, wins, strict=True)]}
        for cand, res in results.items()]}
    (folder / "backtest_results.json").write_text(json.dumps(backtests, indent=2, default=float))
