"""A forecasting job is a job: its rows in the store, and the CLI's views of them."""

from __future__ import annotations

import json

import pytest

from tabpilot.forecast.job import ENSEMBLE, fit
from tabpilot.forecast.request import OBJECTIVES, ForecastRequest
from tabpilot.store import Store


def test_the_job_and_every_candidate_are_rows_with_their_backtest_metrics(finished_job):
    result, _, workspace = finished_job
    store = Store.for_workspace(workspace, create=False)
    job = store.get_job("fcjob")
    assert (job.status, job.secondary_status) == ("Completed", "Completed")
    assert (job.problem_type, job.metric) == ("TimeSeriesForecasting",
                                              "AverageWeightedQuantileLoss")
    assert job.best_candidate == ENSEMBLE == result.best
    assert job.heartbeat is not None and job.ended is not None
    rows = {c.name: c for c in store.list_candidates("fcjob")}
    assert set(rows) == {"SeasonalNaive", "AutoTheta", ENSEMBLE}
    assert [rows[n].number for n in ("SeasonalNaive", "AutoTheta", ENSEMBLE)] == [1, 2, 3]
    assert rows[ENSEMBLE].artifact_dir == str(result.model_dir)
    assert rows["AutoTheta"].artifact_dir is None  # only the ensemble is packaged
    metrics = store.metrics("fcjob")
    board = result.leaderboard.set_index("candidate")
    for name in rows:
        assert set(metrics[name]["validation"]) == set(OBJECTIVES)
        assert metrics[name]["validation"]["MASE"] == pytest.approx(board.at[name, "MASE"])
        assert rows[name].objective == pytest.approx(board.at[name, "objective"])


def test_describe_shows_the_forecasting_config_best_candidate_and_backtests(finished_job, cli):
    result, _, workspace = finished_job
    proc = cli("describe", "fcjob", "--json", workspace=workspace)
    assert proc.returncode == 0, proc.stderr
    desc = json.loads(proc.stdout)
    config = desc["AutoMLProblemTypeConfig"]["TimeSeriesForecastingJobConfig"]
    assert config["TimeSeriesConfig"] == {"TargetAttributeName": "y",
                                          "TimestampAttributeName": "ds",
                                          "ItemIdentifierAttributeName": "id"}
    assert (config["ForecastFrequency"], config["ForecastHorizon"]) == ("1D", 7)
    assert config["ForecastQuantiles"] == ["p10", "p50", "p90"]
    assert desc["AutoMLProblemTypeConfigName"] == "TimeSeriesForecasting"
    best = desc["BestCandidate"]
    assert best["CandidateName"] == ENSEMBLE and best["Rank"] == 1
    assert {m["MetricName"] for m in best["CandidateProperties"]["CandidateMetrics"]} == \
        set(OBJECTIVES)
    locations = best["CandidateProperties"]["CandidateArtifactLocations"]
    backtests = json.loads(open(locations["BacktestResults"]).read())["BacktestResults"]
    assert {b["CandidateName"] for b in backtests} == {"SeasonalNaive", "AutoTheta", ENSEMBLE}
    shares = json.loads(open(locations["Explainability"]).read())["Members"]
    assert set(shares) <= {"SeasonalNaive", "AutoTheta"} and shares
    assert best["InferenceContainers"][0]["ModelDataUrl"] == str(result.model_dir)
    text = cli("describe", "fcjob", workspace=workspace)
    assert text.returncode == 0, text.stderr
    assert "7 x 1D ahead, items by id" in text.stdout
    assert f"BestCandidate: {ENSEMBLE} of " in text.stdout


def test_candidates_and_list_show_the_forecasting_job(finished_job, cli):
    result, _, workspace = finished_job
    listed = cli("candidates", "fcjob", "--json", workspace=workspace)
    assert listed.returncode == 0, listed.stderr
    names = [c["CandidateName"] for c in json.loads(listed.stdout)["Candidates"]]
    assert names == list(result.leaderboard["candidate"])  # best first, as the job ranked
    table = cli("candidates", "fcjob", "--wide", workspace=workspace)
    assert table.returncode == 0 and "AutoTheta" in table.stdout, table.stderr
    assert "AverageWeightedQuantileLoss" in table.stdout
    jobs = json.loads(cli("list", "--json", workspace=workspace).stdout)["AutoMLJobSummaries"]
    mine = next(j for j in jobs if j["AutoMLJobName"] == "fcjob")
    assert (mine["ProblemType"], mine["BestCandidate"]) == ("TimeSeriesForecasting", ENSEMBLE)
    assert mine["BestObjectiveValue"] == pytest.approx(result.leaderboard["objective"].iloc[0])


def test_the_job_deploys_by_name_and_forecast_predict_finds_it(finished_job, cli, tmp_path):
    result, table, workspace = finished_job
    copy = tmp_path / "ws"  # a workspace of its own: the shared one stays as it is
    import shutil

    shutil.copytree(workspace, copy)
    proc = cli("deploy", "fcjob", "--endpoint", "sales", workspace=copy)
    assert proc.returncode == 0, proc.stderr
    row = Store.for_workspace(copy).get_endpoint("sales")
    assert row.model_dir.endswith(f"jobs/fcjob/candidates/{ENSEMBLE}/model")
    assert row.candidate == ENSEMBLE
    history = tmp_path / "h.csv"
    table.to_csv(history, index=False)
    out = cli("forecast-predict", "fcjob", str(history), "-o", str(tmp_path / "f.csv"),
              workspace=copy)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "f.csv").read_text().startswith("id,ds,mean,p10,p50,p90")


def _request(name: str) -> ForecastRequest:
    return ForecastRequest.build(target="y", timestamp="ds", item_id="id", frequency="1D",
                                 horizon=7, time_limit=60, name=name,
                                 candidates=["SeasonalNaive", "AutoTheta"],
                                 execute_notebook=False)


def test_a_stop_ends_the_job_stopped_with_what_it_had(tmp_path, make_table, monkeypatch):
    from tabpilot.forecast import recording

    monkeypatch.setattr(recording.JobRecord, "stopping", lambda self: True)
    result = fit(make_table(), _request("halted"), tmp_path)
    job = Store.for_workspace(tmp_path).get_job("halted")
    assert (job.status, job.secondary_status) == ("Stopped", "Stopped")
    assert set(result.leaderboard["candidate"]) == {"SeasonalNaive", ENSEMBLE}
    assert any(n.startswith("stopped on request before AutoTheta") for n in result.notes)
    assert json.loads((result.folder / "job.json").read_text())["AutoMLJobStatus"] == "Stopped"


def test_a_failure_after_the_start_leaves_the_job_failed_with_its_reason(
        tmp_path, make_table, monkeypatch):
    from tabpilot.forecast import job as forecast_job

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(forecast_job, "save", broken)
    with pytest.raises(OSError):
        fit(make_table(), _request("broken"), tmp_path)
    row = Store.for_workspace(tmp_path).get_job("broken")
    assert (row.status, row.failure_reason) == ("Failed", "disk full")


def test_bad_input_writes_no_row_and_a_taken_name_is_refused(tmp_path, make_table,
                                                              finished_job):
    from tabpilot.errors import DataError, JobExistsError

    with pytest.raises(DataError):
        fit(make_table().drop(columns="y"), _request("nothing"), tmp_path)
    assert not (tmp_path / "tabpilot.db").exists()
    _, _, workspace = finished_job
    (workspace / "jobs" / "fcjob").rename(workspace / "jobs" / "fcjob.away")
    try:  # the folder gone, the row still names it
        with pytest.raises(JobExistsError, match="'fcjob' already exists"):
            fit(make_table(), _request("fcjob"), workspace)
    finally:
        (workspace / "jobs" / "fcjob.away").rename(workspace / "jobs" / "fcjob")


@pytest.mark.cluster
def test_a_forecasting_job_is_recorded_on_postgresql(tmp_path, make_table, request):
    """PostgreSQL checks the widths SQLite ignores: `TimeSeriesForecasting` needs the
    32-character problem_type of migration 0003."""
    from pgcluster import missing  # conftest put tests/store on the path

    reason = missing()
    assert reason is None, f"PostgreSQL is needed here: {reason}"
    url = request.getfixturevalue("postgres_url")
    store = Store.for_workspace(tmp_path, url=url)
    fit(make_table(), _request("on-postgres"), tmp_path, store=store)
    row = store.get_job("on-postgres")
    assert (row.problem_type, row.status) == ("TimeSeriesForecasting", "Completed")
    assert {c.name for c in store.list_candidates("on-postgres")} == \
        {"SeasonalNaive", "AutoTheta", ENSEMBLE}
    store.engine.dispose()
