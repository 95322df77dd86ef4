"""Tracking against a real `mlflow server` process: a tiny real job logged at its end, its
runs, curves, models and registry entry read back through MLflow's own client, and
`tabpilot track` for a job logged later. Slow: the server alone takes ~7 s to start."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import psutil
import pytest
from trackinglib import TINY_JOB, binary_table

from tabpilot.automl import AutoML
from tabpilot.store import Store

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra (mlflow-skinny) is not installed")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tracked(mlflow_server: str, tmp_path_factory: pytest.TempPathFactory):
    """(server URI, workspace, job name, MLflow client, held-out rows) of a job run with
    `mlflow=URI`."""
    root = tmp_path_factory.mktemp("tracked")
    table = binary_table(460)
    train, held_out = table.iloc[:400], table.iloc[400:].drop(columns="y")
    automl = AutoML("y", workspace=root / "ws", mlflow=mlflow_server, **TINY_JOB).fit(train)
    client = mlflow.tracking.MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    return mlflow_server, root / "ws", automl.name, client, held_out.reset_index(drop=True)


def _runs(client, name: str, kind: str):
    experiment = client.get_experiment_by_name("tabpilot")
    return client.search_runs([experiment.experiment_id], filter_string=(
        f"tags.`tabpilot.job` = '{name}' and tags.`tabpilot.kind` = '{kind}'"))


def test_one_parent_run_and_a_child_run_per_candidate(tracked) -> None:
    _, workspace, name, client, _ = tracked
    store = Store.for_workspace(workspace, create=False)
    job = store.get_job(name)
    [parent] = _runs(client, name, "job")
    children = _runs(client, name, "candidate")
    assert sorted(r.data.tags["mlflow.runName"] for r in children) == sorted(
        c.name for c in store.list_candidates(name))
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    assert parent.data.params["dataset_sha256"] == json.loads(
        (Path(job.job_dir) / "job.json").read_text())["dataset_sha256"]
    assert parent.data.params["request.target"] == "y"
    assert parent.data.metrics[f"best_{job.metric}"] == pytest.approx(
        store.get_candidate(name, job.best_candidate).objective)
    assert "leaderboard.json" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    best = next(r for r in children if r.data.tags["mlflow.runName"] == job.best_candidate)
    row = store.get_candidate(name, job.best_candidate)
    assert best.data.params["algorithm"] == row.algorithm
    assert best.data.metrics["fit_seconds"] == pytest.approx(row.fit_seconds)
    assert best.data.metrics[f"validation_{job.metric}"] == pytest.approx(row.objective)
    assert any(key.startswith("hp.") for key in best.data.params)


def test_boosting_curves_are_metric_histories_with_steps(tracked) -> None:
    _, workspace, name, client, _ = tracked
    store = Store.for_workspace(workspace, create=False)
    boosted = [c for c in store.list_candidates(name) if c.family == "lightgbm"]
    folders = [Path(workspace) / "jobs" / name / "candidates" / c.name for c in boosted]
    with_curves = [(c, f / "curves.json") for c, f in zip(boosted, folders, strict=True)
                   if (f / "curves.json").is_file()]
    if not with_curves:
        pytest.skip("no curves.json in the LightGBM candidates' folders (engineer E's "
                    "per-iteration curves are not recorded yet)")
    candidate, path = with_curves[0]
    curves = json.loads(path.read_text())
    [run] = [r for r in _runs(client, name, "candidate")
             if r.data.tags["mlflow.runName"] == candidate.name]
    history = client.get_metric_history(run.info.run_id,
                                        f"curve_validation_{curves['metric']}")
    assert len(history) == len(curves["validation"]) > 1
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(
        range(len(curves["validation"])))
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(
        curves["validation"])


def test_the_champion_pyfunc_predicts_exactly_as_tabpilot(tracked, monkeypatch) -> None:
    uri, workspace, name, client, held_out = tracked
    from tabpilot.artifacts import load

    store = Store.for_workspace(workspace, create=False)
    best = store.get_candidate(name, store.get_job(name).best_candidate)
    version = client.get_model_version_by_alias(name, "champion")
    assert version.tags["tabpilot.candidate"] == best.name
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    expected = load(best.artifact_dir).predict(held_out)
    assert np.array_equal(np.asarray(pyfunc.predict(held_out)), expected)
    inputs = pyfunc.metadata.get_input_schema().input_names()
    assert inputs == ["a", "b", "noise", "colour"]


def test_tabpilot_track_logs_once_and_lineage_shows_the_run(tracked, cli) -> None:
    uri, workspace, name, client, _ = tracked
    again = cli("track", name, "--mlflow", uri, "--json", workspace=workspace)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["AlreadyTracked"] is True
    assert len(_runs(client, name, "job")) == 1
    shown = json.loads(cli("lineage", name, "--json", workspace=workspace).stdout)
    [run] = [v for v in shown["Vertices"] if v["Type"] == "MLflowRun"]
    assert run["TrackingUri"] == uri and run["Name"] == _runs(client, name, "job")[0].info.run_id


def test_a_job_logged_later_with_tabpilot_track(mlflow_server, tmp_path, cli) -> None:
    automl = AutoML("y", workspace=tmp_path / "ws", **TINY_JOB).fit(binary_table(300, seed=1))
    store = Store.for_workspace(tmp_path / "ws", create=False)
    done = cli("track", automl.name, "--mlflow", mlflow_server, "--models", "best",
               workspace=tmp_path / "ws")
    assert done.returncode == 0, done.stderr
    assert f"job {automl.name} -> run" in done.stdout and "@champion" in done.stdout
    # no pooled connection outlives the logging: MLflow does not resend a runs/create whose
    # connection the server closed for idling (its keep-alive timeout) as it was reused
    assert _open_connections(mlflow_server) == []
    client = mlflow.tracking.MlflowClient(tracking_uri=mlflow_server)
    children = _runs(client, automl.name, "candidate")
    assert len(children) == len(store.list_candidates(automl.name))
    down = cli("track", automl.name, "--mlflow", "http://127.0.0.1:9", workspace=tmp_path / "ws")
    assert down.returncode == 2 and "does not answer" in down.stderr


def _open_connections(uri: str) -> list:
    port = int(uri.rsplit(":", 1)[1])
    return [c for c in psutil.Process().net_connections(kind="tcp")
            if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED]
