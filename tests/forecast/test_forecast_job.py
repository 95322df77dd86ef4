"""A small forecasting job end to end: leaderboard, job folder, model directory, CLI."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from tabpilot.errors import JobExistsError, ModelIntegrityError
from tabpilot.forecast.job import ENSEMBLE, fit
from tabpilot.forecast.model import load
from tabpilot.forecast.request import ForecastRequest

CANDIDATES = ["SeasonalNaive", "AutoTheta", "LightGBM"]


def build(**kw) -> ForecastRequest:
    base = {"target": "y", "timestamp": "ds", "item_id": "id", "frequency": "1D", "horizon": 7,
            "time_limit": 60, "candidates": CANDIDATES, "name": "fc", "execute_notebook": False}
    return ForecastRequest.build(**{**base, **kw})


@pytest.fixture(scope="module")
def job(tmp_path_factory, make_table):
    import tabpilot.forecast

    workspace = tmp_path_factory.mktemp("ws")
    table = make_table()
    settings = build().model_dump(exclude_defaults=True)  # the Python entry point
    return tabpilot.forecast.fit(table, workspace, **settings), table, workspace


def test_leaderboard_scores_every_candidate_and_the_ensemble(job):
    result, _, _ = job
    board = result.leaderboard
    assert sorted(board["candidate"]) == sorted([*CANDIDATES, ENSEMBLE])
    assert list(board.columns) == ["candidate", "objective", "AverageWeightedQuantileLoss", "WAPE",
                                   "MASE", "MAPE", "RMSE", "fit_seconds"]
    assert board["objective"].equals(board["AverageWeightedQuantileLoss"])
    assert board["objective"].is_monotonic_increasing
    scores = board.set_index("candidate")["AverageWeightedQuantileLoss"]
    assert scores[ENSEMBLE] <= scores.drop(ENSEMBLE).min() + 1e-12
    assert scores.drop(ENSEMBLE).min() < scores["SeasonalNaive"]  # trend: naive lags behind
    assert result.best == board.iloc[0]["candidate"]


def test_job_folder_holds_autopilot_shaped_results(job):
    result, _, _ = job
    assert result.folder.name == "fc" and result.folder.parent.name == "jobs"
    backtests = json.loads((result.folder / "backtest_results.json").read_text())["BacktestResults"]
    naive = next(b for b in backtests if b["CandidateName"] == "SeasonalNaive")
    assert [w["Window"] for w in naive["Windows"]] == [0, 1, 2]
    last = naive["Windows"][-1]
    assert last["TrainEnd"]["item0"] == "2024-03-03 00:00:00"  # 70 days, less 7
    assert set(last["Items"]["item1"]) >= {"MASE", "wQL[0.1]", "wQL[0.5]", "wQL[0.9]"}
    job_json = json.loads((result.folder / "job.json").read_text())
    assert job_json["BestCandidate"]["CandidateName"] == result.best
    assert json.loads((result.folder / "leaderboard.json").read_text())[0]["candidate"] == result.best


def test_the_saved_model_forecasts_from_a_given_history(job):
    result, table, _ = job
    predictor, metadata = load(result.model_dir)
    assert metadata["problem_type"] == "TimeSeriesForecasting"
    shorter = table.groupby("id").head(60)  # the history may be any recent part
    frame = predictor.predict(shorter)
    assert list(frame.columns) == ["id", "ds", "mean", "p10", "p50", "p90"]
    assert frame.groupby("id").size().tolist() == [7, 7]
    assert frame["ds"].iloc[0] == pd.Timestamp("2024-03-01")  # day 61
    assert (np.diff(frame[["p10", "p50", "p90"]].to_numpy(), axis=1) >= 0).all()
    truth = table.groupby("id").nth(list(range(60, 67)))["y"].to_numpy()
    assert np.abs(frame["mean"].to_numpy() - truth).mean() < 5  # the noise is 1, season 8


def test_a_tampered_model_refuses_to_load(job, tmp_path):
    import shutil

    result, _, _ = job
    copy = tmp_path / "model"
    shutil.copytree(result.model_dir, copy)
    with open(copy / "predictor.pkl", "ab") as f:
        f.write(pickle.dumps("extra"))
    with pytest.raises(ModelIntegrityError, match="does not match its sha256"):
        load(copy)
    shutil.copytree(result.model_dir, tmp_path / "m2")
    (tmp_path / "m2" / "stray.py").write_text("print()")
    with pytest.raises(ModelIntegrityError, match="not in manifest.json"):
        load(tmp_path / "m2")


def test_a_job_name_is_not_reused(job):
    _, table, workspace = job
    with pytest.raises(JobExistsError, match="'fc' exists"):
        fit(table, build(), workspace)


def test_cli_forecast_predict_writes_the_forecast(job, cli, tmp_path):
    result, table, workspace = job
    history = tmp_path / "history.csv"
    table.to_csv(history, index=False)
    proc = cli("forecast-predict", "fc", str(history), "-o", str(tmp_path / "f.csv"),
               workspace=workspace)
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(tmp_path / "f.csv")) == 14


@pytest.mark.parametrize("args,words", [
    (["--frequency", "60min"], "ForecastFrequency"),
    (["--horizon", "30"], "quarter of the shortest series"),
    (["--target", "nope"], "'nope' is not in the table"),
    (["--candidates", "Prophet"], "unknown forecasting candidate 'Prophet'"),
])
def test_cli_bad_input_is_one_line_and_exit_2(cli, tmp_path, args, words, make_table):
    path = tmp_path / "t.csv"
    make_table().to_csv(path, index=False)
    base = {"--target": "y", "--timestamp": "ds", "--item-id": "id", "--horizon": "7",
            "--frequency": "1D"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    proc = cli("forecast", str(path), *[x for kv in base.items() for x in kv],
               workspace=tmp_path / "ws")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and words in lines[0], proc.stderr
    assert not (tmp_path / "ws" / "jobs").exists()


def test_a_time_limit_too_short_keeps_the_baseline_and_says_what_it_skipped(tmp_path, make_table):
    result = fit(make_table(), build(time_limit=0.001, name="quick"), tmp_path)
    assert set(result.leaderboard["candidate"]) == {"SeasonalNaive", ENSEMBLE}
    assert "AutoTheta skipped: its backtest did not fit the time limit" in result.notes
    assert any("past its 0s limit" in note for note in result.notes)
    predictor, _ = load(result.model_dir)
    assert len(predictor.predict(make_table())) == 14


def test_a_history_too_short_for_the_model_is_one_line(job):
    from tabpilot.errors import DataError

    result, table, _ = job
    predictor, _ = load(result.model_dir)
    with pytest.raises(DataError, match="points of history; this model reads the last"):
        predictor.predict(table.groupby("id").head(9))


def test_the_python_entry_point_refuses_an_unknown_setting_in_one_line(tmp_path, make_table):
    import tabpilot.forecast
    from tabpilot.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown forecast setting 'horizn'; did you mean 'horizon'"):
        tabpilot.forecast.fit(make_table(), tmp_path, target="y", timestamp="ds",
                              frequency="1D", horizn=7)


def test_intermittent_series_get_the_croston_family_and_no_negative_quantiles(tmp_path):
    from tabpilot.forecast.candidates import Setting, candidates_for

    rng = np.random.default_rng(1)
    table = pd.concat([pd.DataFrame({"id": f"s{i}", "ds": pd.date_range("2024-01-01", periods=80),
                                     "y": rng.poisson(0.4, 80) * rng.integers(1, 5, 80)})
                       for i in range(3)])
    histories = {i: g.set_index("ds")["y"].astype(float) for i, g in table.groupby("id")}
    names = [c.name for c in candidates_for(Setting(7, (0.1, 0.5, 0.9), 7, "1D"), histories)]
    assert {"CrostonOptimized", "ADIDA", "IMAPA"} <= set(names) and names[0] == "SeasonalNaive"
    result = fit(table, build(candidates=["SeasonalNaive", "CrostonOptimized", "IMAPA"],
                              name="sparse"), tmp_path)
    assert "IMAPA" in set(result.leaderboard["candidate"])
    frame = load(result.model_dir)[0].predict(table)
    assert (frame[["mean", "p10", "p50", "p90"]] >= 0).all().all()
    assert (frame["p90"] > frame["p10"]).any()  # conformal intervals, not the mean alone


def test_cli_forecast_runs_a_job_and_writes_the_forecast(cli, tmp_path, make_table):
    path = tmp_path / "t.csv"
    make_table().to_csv(path, index=False)
    args = ["forecast", str(path), "--target", "y", "--timestamp", "ds", "--item-id", "id",
            "--horizon", "7", "--frequency", "1D", "--candidates", "SeasonalNaive,AutoTheta",
            "--quantiles", "p10,p90", "--no-notebook", "--name", "clijob",
            "-o", str(tmp_path / "f.csv")]
    proc = cli(*args, "--json", workspace=tmp_path / "ws")
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["AutoMLJobName"] == "clijob"
    assert {r["candidate"] for r in answer["Leaderboard"]} == {"SeasonalNaive", "AutoTheta", ENSEMBLE}
    assert (tmp_path / "ws" / "jobs" / "clijob" / "candidates" / ENSEMBLE / "model" /
            "manifest.json").is_file()
    assert list(pd.read_csv(tmp_path / "f.csv").columns) == ["id", "ds", "mean", "p10", "p90"]
    shown = cli(*args[:-4], "--name", "clijob2", workspace=tmp_path / "ws")
    assert shown.returncode == 0 and "SeasonalNaive" in shown.stdout and "wQL*" in shown.stdout
