"""A forecasting job: prepare the series, backtest every candidate, ensemble, refit, save.

    WORKSPACE/jobs/<job>/
      job.json               the request, status, timings, notes, the best candidate
      backtest_results.json  Autopilot's BacktestResults shape: per candidate, per window,
                             the metrics over all items, per item, and wQL per quantile
      leaderboard.json       candidate, objective, every metric, fit seconds (best first)
      candidates/WeightedEnsemble/model/   the ensemble refitted on all data (forecast/model.py)

The job and its candidates are rows in the store too (forecast/recording.py), so every
face that lists, describes or deploys a job sees a forecasting one.

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
from tabpilot.artifacts.store import for_workspace as artifact_store
from tabpilot.errors import ConfigError, JobExistsError
from tabpilot.forecast import backtest, covariates, ensemble
from tabpilot.forecast.candidates import (
    ALL,
    FALLBACK,
    OutOfTime,
    Setting,
    candidates_for,
    clip_non_negative,
)
from tabpilot.forecast.model import ForecastPredictor, save
from tabpilot.forecast.recording import JobRecord
from tabpilot.forecast.request import ForecastRequest
from tabpilot.forecast.series import Series, prepare
from tabpilot.store import Store

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


def fit(table: pd.DataFrame, request: ForecastRequest, workspace: Path,
        store: Store | None = None, input_uri: str = "<DataFrame>",
        adopt: bool = False) -> ForecastResult:
    """Run the job end to end, recorded in `store` (default: the workspace's) as it goes;
    `adopt`: the job row exists (the SageMaker facade made it). Bad input raises before
    anything is written; a failure after that leaves the job Failed with its reason."""
    started = time.time()
    series = prepare(table, request)
    if series.categories:  # the levels seen, kept with the model: forecasts encode the same
        request = request.model_copy(update={"covariate_categories": series.categories})
    unknown = sorted(set(request.candidates or ()) - set(ALL))
    if unknown:
        raise ConfigError(f"unknown forecasting candidate {unknown[0]!r}; "
                          f"choose from {', '.join(ALL)}")
    name = _job_name(request, workspace, adopt)
    # where the ended job is published ($TABPILOT_ARTIFACTS, which --artifacts sets; else
    # the workspace itself): an unreachable S3 is one line now, not after the training
    artifacts = artifact_store(workspace)
    artifacts.check()
    if store is None:
        store = Store.for_workspace(workspace)
    if not adopt:
        store.ensure_new_job(name)
    record = JobRecord(store, name, request, workspace / "jobs" / name, input_uri, adopt,
                       artifacts)
    record.start()
    try:
        return _run(table, series, request, record, started)
    except BaseException as exc:
        record.fail(exc)
        raise


def _run(table: pd.DataFrame, series: Series, request: ForecastRequest, record: JobRecord,
         started: float) -> ForecastResult:
    histories = {uid: g.set_index("ds")["y"]
                 for uid, g in series.frame.groupby("unique_id", sort=False)}
    setting = Setting(request.horizon, tuple(request.quantiles), request.season, series.freq,
                      request.seed, request.holiday_country, tuple(request.covariates),
                      tuple(request.covariate_categories))
    wins = backtest.windows(histories, request.horizon, request.n_windows, setting.season)
    notes = list(series.notes)
    # covariates are known in advance: every backtest window reads their actual values
    known = covariates.frames(series.frame, request.covariates) if request.covariates else None
    board = _backtest_all(histories, setting, wins, request, notes,
                          started + request.time_limit * (1 - REFIT_SHARE), record, known)
    weights, blended = _ensemble(board, wins, request)
    used = [i for i in range(len(board.kept)) if weights[i].sum() > 0]
    scores = backtest.score(wins, blended, request.quantiles)
    fit_seconds = round(sum(board.rows[i]["fit_seconds"] for i in used), 3)
    board.rows.append({"candidate": ENSEMBLE, **scores, "fit_seconds": fit_seconds,
                       **({"covariates": "used" if any(board.kept[i].uses_covariates
                                                       for i in used) else "ignored"}
                          if request.covariates else {})})
    board.results[ENSEMBLE] = [_window_result(w, f, request.quantiles)
                               for w, f in zip(wins, blended, strict=True)]
    members = [board.kept[i].fit(histories, covariates=known)  # on all data, whatever the time
               for i in used]
    if request.covariates:
        notes.append(_covariate_note(request.covariates, board.kept))

    leaderboard = pd.DataFrame(board.rows)
    # the ensemble (the one model packaged) first on a tie: it is then the single best
    leaderboard["_tie"] = leaderboard["candidate"] != ENSEMBLE
    leaderboard = (leaderboard.sort_values([request.objective, "_tie"], kind="stable")
                   .drop(columns="_tie").reset_index(drop=True))
    leaderboard.insert(1, "objective", leaderboard[request.objective])  # whichever it is
    folder = record.folder
    member_names = [board.kept[i].name for i in used]
    metadata = {"candidate": ENSEMBLE, "request": request.model_dump(),
                "members": member_names, "weights": weights[used].tolist(),
                "metrics": scores, "freq": series.freq,
                # what a forecast request must carry for the horizon, and who reads it
                "covariates": list(request.covariates),
                "covariates_used_by": [n for n, m in zip(member_names, members, strict=True)
                                       if m.uses_covariates and request.covariates]}
    model_dir = save(ForecastPredictor(request, setting, members, weights[used]), metadata,
                     folder / "candidates" / ENSEMBLE / "model")
    if time.time() - started > request.time_limit:
        notes.append(f"the job ran {time.time() - started:.0f}s, past its "
                     f"{request.time_limit:.0f}s limit (the baseline's backtest and the "
                     "final refit always run)")
    _explain(folder, board.kept, weights, request.quantiles, request.covariates)
    status = "Stopped" if board.stopped else "Completed"
    _write(folder, record.name, request, leaderboard, board.results, notes,
           time.time() - started, wins, status)  # the notebook finds its folder by job.json
    white = _white_box(table, series, request, board, wins, blended, folder, started)
    notes += white
    seconds = time.time() - started
    _write(folder, record.name, request, leaderboard, board.results, notes, seconds, wins,
           status)
    record.candidate(ENSEMBLE, scores, fit_seconds, model_dir=model_dir,
                     params={"members": member_names, "weights": weights[used].tolist()})
    best = leaderboard.iloc[0]["candidate"]
    record.finish(best, seconds, notes, items=len(histories), rows=len(table),
                  stopped=board.stopped, out_of_time=any("time limit" in n for n in notes))
    return ForecastResult(record.name, folder, leaderboard, best, model_dir,
                          request.objective, seconds, notes)


@dataclass
class _Board:
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per candidate scored
    kept: list = field(default_factory=list)  # the candidates scored, in order
    forecasts: list = field(default_factory=list)  # their backtest forecasts, per window
    results: dict[str, list] = field(default_factory=dict)  # BacktestResults per candidate
    stopped: bool = False  # a stop was asked for: the candidates left were not tried


def _backtest_all(histories, setting: Setting, wins: list[backtest.Window],
                  request: ForecastRequest, notes: list[str], end: float,
                  record: JobRecord, known=None) -> _Board:
    """Every candidate on every window, cheapest first, until `end` (time.time()) or a
    stop; the first (SeasonalNaive, the baseline every other is measured against) always
    runs. Each scored candidate is recorded at once."""
    board = _Board()
    for k, cand in enumerate(candidates_for(setting, histories, request.candidates)):
        if k > 0 and record.stopping():
            board.stopped = True
            notes.append(f"stopped on request before {cand.name}; the candidates scored "
                         "so far were ensembled")
            break
        t0 = time.time()
        try:
            per_window = []
            for w in wins:
                if per_window and k > 0 and t0 + (time.time() - t0) * len(wins) / len(per_window) > end:
                    raise OutOfTime(cand.name)  # the windows left will not fit, at this pace
                per_window.append(clip_non_negative(
                    cand.forecast(w.train, float("inf") if k == 0 else end, covariates=known),
                    w.train))
        except OutOfTime:
            notes.append(f"{cand.name} skipped: its backtest did not fit the time limit")
            continue
        except Exception as exc:  # a model that fails on these series is left out, said so
            notes.append(f"{cand.name} failed ({type(exc).__name__}: {exc})")
            log.warning("candidate %s failed", cand.name, exc_info=True)
            continue
        refused = getattr(cand, "fell_back_", ())
        if refused:
            notes.append(f"{cand.name} refused {len(refused)} of the {len(histories)} series "
                         f"in some backtest window (too short or too flat for it): "
                         f"{FALLBACK} forecast those")
        scores = backtest.score(wins, per_window, request.quantiles)
        seconds = round(time.time() - t0, 3)
        row = {"candidate": cand.name, **scores, "fit_seconds": seconds}
        if request.covariates:  # the leaderboard says who read them
            row["covariates"] = "used" if cand.uses_covariates else "ignored"
        board.rows.append(row)
        board.kept.append(cand)
        board.forecasts.append(per_window)
        board.results[cand.name] = [_window_result(w, f, request.quantiles)
                                    for w, f in zip(wins, per_window, strict=True)]
        record.candidate(cand.name, scores, seconds)
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


def _job_name(request: ForecastRequest, workspace: Path, adopt: bool) -> str:
    from tabpilot.jobs.runner import new_job_name

    name = names.check(request.name, "job") if request.name else new_job_name()
    if not adopt and (workspace / "jobs" / name).exists():
        raise JobExistsError(f"job {name!r} exists in {workspace}; choose another --name")
    return name


def _window_result(window: backtest.Window, forecast, quantiles: list[float]) -> dict[str, Any]:
    return {"Window": window.index,
            "Metrics": backtest.window_metrics(window, forecast, quantiles),
            "Items": backtest.item_metrics(window, forecast, quantiles)}


EXPLANATIONS = "explanations.json"


def _white_box(table: pd.DataFrame, series: Series, request: ForecastRequest, board: _Board,
               wins: list[backtest.Window], blended: list, folder: Path, started: float
               ) -> list[str]:
    """The time-series analysis, the backtest forecasts and plots, the exploration
    notebook (forecast/notebook.py); notes on what was left out."""
    from tabpilot.forecast import analysis, notebook
    from tabpilot.forecast.model import quantile_column

    columns = ["mean", *map(quantile_column, request.quantiles)]
    forecasts = {c.name: f for c, f in zip(board.kept, board.forecasts, strict=True)}
    frame = notebook.forecasts_frame(wins, {**forecasts, ENSEMBLE: blended}, columns,
                                     series.freq)
    until = started + request.time_limit if request.execute_notebook else None
    return notebook.write(folder, analysis.analyse(table, request, series), frame,
                          [*forecasts, ENSEMBLE], until)


def _covariate_note(names: list[str], kept: list) -> str:
    used = [c.name for c in kept if c.uses_covariates]
    ignored = [c.name for c in kept if not c.uses_covariates]
    return (f"covariates {', '.join(names)}: used by {', '.join(used) or 'no candidate scored'}"
            f"; ignored by {', '.join(ignored) or 'none'} (local models forecast each target "
            "from its own past)")


def _explain(folder: Path, kept: list, weights: np.ndarray, quantiles: list[float],
             covariates: list[str] | None = None) -> None:
    """Each candidate's share of the ensemble's forecast, per output column (mean, p10,
    ...): what the served model leans on where, its Explainability artifact; with
    covariates, whether the candidate reads them."""
    from tabpilot.forecast.model import quantile_column

    names = [c.name for c in kept]
    columns = ["mean", *map(quantile_column, quantiles)]
    shares = {n: dict(zip(columns, map(float, weights[i]), strict=True))
              for i, n in enumerate(names)}
    reads = {c.name: ({"Covariates": {"Names": list(covariates), "Used": c.uses_covariates}}
                      if covariates else {}) for c in kept}
    members = [c for i, c in enumerate(kept) if weights[i].any()]
    explained = {ENSEMBLE: {"Members": {n: w for n, w in shares.items() if any(w.values())},
                            **({"Covariates": {"Names": list(covariates), "UsedBy": [
                                c.name for c in members if c.uses_covariates]}}
                               if covariates else {})},
                 **{n: {"EnsembleWeights": w, **reads[n]} for n, w in shares.items()}}
    for name, body in explained.items():
        (folder / "candidates" / name).mkdir(parents=True, exist_ok=True)
        text = json.dumps({"CandidateName": name, "Explanation": "the weight of each "
                           "candidate's forecast in the ensemble, per output column", **body},
                          indent=2)
        (folder / "candidates" / name / EXPLANATIONS).write_text(text)


def _write(folder: Path, name: str, request: ForecastRequest, board: pd.DataFrame,
           results: dict[str, list], notes: list[str], seconds: float,
           wins: list[backtest.Window], status: str) -> None:
    """The job's JSON files (the model directory is written already)."""
    folder.mkdir(parents=True, exist_ok=True)
    best = board.iloc[0]
    job = {"AutoMLJobName": name, "ProblemType": "TimeSeriesForecasting",
           "AutoMLJobStatus": status, "ElapsedSeconds": round(seconds, 1),
           "Request": request.model_dump(), "Notes": notes,
           "BestCandidate": {"CandidateName": best["candidate"],
                             "FinalAutoMLJobObjectiveMetric": {
                                 "MetricName": request.objective,
                                 "Value": float(best[request.objective])},
                             "ModelLocation": str(folder / "candidates" / ENSEMBLE / "model")}}
    (folder / "job.json").write_text(json.dumps(job, indent=2, default=str))
    (folder / "leaderboard.json").write_text(board.to_json(orient="records", indent=2))
    backtests = {"BacktestResults": [
        {"CandidateName": cand, "ObjectiveMetric": request.objective,
         "Windows": [dict(r, TrainEnd={i: str(w.train[i].index[-1]) for i in w.train})
                     for r, w in zip(res, wins, strict=True)]}
        for cand, res in results.items()]}
    (folder / "backtest_results.json").write_text(json.dumps(backtests, indent=2, default=float))
