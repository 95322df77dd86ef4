"""The store's side of fault tolerance: heartbeats, a job's end closing its candidates,
an older database upgraded in place, and paths stored relative to the workspace."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tabpilot.jobs import heartbeat
from tabpilot.jobs.views import check_alive
from tabpilot.store import Store

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))  # servinglib's hang guard
from servinglib import wait_until  # noqa: E402


def _job(store: Store, name: str = "j1", **extra) -> None:
    fields = dict(name=name, status="InProgress", secondary_status="ModelTuning", target="y",
                  input_uri="/data/t.csv", problem_type="binary", metric="F1",
                  request={"target": "y", "time_limit": 60.0},
                  job_dir=str(Path(store.root or "/") / "jobs" / name))
    store.create_job(**dict(fields, **extra))


def _candidate(store: Store, name: str, status: str = "InProgress", job: str = "j1",
               number: int = 0, **extra) -> None:
    store.add_candidate(job=job, name=name, number=number, algorithm="LightGBM",
                        family="lightgbm", params={"learning_rate": 0.1}, source="portfolio",
                        status=status, **extra)


@pytest.mark.parametrize("status", ["Completed", "Failed", "Stopped"])
def test_a_job_that_ends_closes_its_unfinished_candidates(store: Store, status: str) -> None:
    _job(store)
    _candidate(store, "lightgbm-000", status="Completed", number=0)
    _candidate(store, "lightgbm-001", number=1)
    store.update_job("j1", status=status, secondary_status=status)
    rows = {c.name: c for c in store.list_candidates("j1")}
    assert rows["lightgbm-000"].status == "Completed"
    assert rows["lightgbm-001"].status == "Stopped"
    assert rows["lightgbm-001"].failure_reason
    assert rows["lightgbm-001"].ended is not None


def test_an_update_that_does_not_end_the_job_leaves_candidates_alone(store: Store) -> None:
    _job(store)
    _candidate(store, "lightgbm-000")
    store.update_job("j1", status="Stopping")
    assert store.list_candidates("j1")[0].status == "InProgress"


def test_a_silent_job_is_failed_once_and_a_beating_one_never(store: Store) -> None:
    _job(store, heartbeat=time.time() - 100)
    _job(store, name="j2", heartbeat=time.time())
    _candidate(store, "lightgbm-000")
    now = time.time()
    assert store.fail_silent_job("j2", now - 10, now - 60, "dead") is False
    assert store.fail_silent_job("j1", now - 10, now - 60, "dead") is True
    assert store.fail_silent_job("j1", now - 10, now - 60, "dead") is False  # once
    job = store.get_job("j1")
    assert (job.status, job.failure_reason) == ("Failed", "dead") and job.ended is not None
    assert store.list_candidates("j1")[0].status == "Stopped"
    assert store.list_candidates("j1")[0].failure_reason == "dead"
    assert store.get_job("j2").status == "InProgress"


def test_a_job_no_process_has_started_counts_its_creation_with_the_start_grace(
        store: Store) -> None:
    _job(store)  # as the SageMaker API creates it: no heartbeat yet
    now = time.time()
    assert store.get_job("j1").heartbeat is None
    # past the beat grace, within the start grace: a worker still starting is not dead
    assert store.fail_silent_job("j1", now + 100, now - 60, "dead") is False
    assert store.fail_silent_job("j1", now + 100, now + 1, "dead") is True


def test_check_alive_fails_a_job_whose_heartbeat_stopped_and_writes_its_leaderboard(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(heartbeat.ENV, "0.2")
    _job(store, heartbeat=time.time())
    _candidate(store, "lightgbm-000", status="Completed", objective=0.9, number=0)
    _candidate(store, "lightgbm-001", number=1)
    with heartbeat.Heartbeat(store, "j1"):
        time.sleep(heartbeat.grace() + 1.0)  # silent this long, were it not beating
        assert check_alive(store, store.get_job("j1")).status == "InProgress"
    wait_until(lambda: check_alive(store, store.get_job("j1")).status != "InProgress",
               heartbeat.grace() + 30, "the silent job to be marked Failed", every=0.2)
    job = store.get_job("j1")
    assert job.status == "Failed" and job.failure_reason == heartbeat.DEAD_REASON
    assert [c.status for c in store.list_candidates("j1")] == ["Completed", "Stopped"]
    board = Path(job.job_dir) / "leaderboard.csv"
    assert board.is_file() and "lightgbm-000" in board.read_text()


def test_the_heartbeat_interval_comes_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(heartbeat.ENV, "2")
    assert heartbeat.interval() == 2.0 and heartbeat.grace() == 6.0
    monkeypatch.setenv(heartbeat.ENV, "0.1")
    assert heartbeat.grace() == heartbeat.MIN_GRACE_SECONDS
    monkeypatch.delenv(heartbeat.ENV)
    assert heartbeat.interval() == heartbeat.DEFAULT_SECONDS


def test_an_older_database_gains_the_heartbeat_column_in_place(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    _job(Store.for_workspace(ws))
    with sqlite3.connect(ws / "tabpilot.db") as conn:  # as an older tabpilot left it
        conn.execute("ALTER TABLE jobs DROP COLUMN heartbeat")
        conn.execute("DROP TABLE alembic_version")  # older tabpilots had no migrations
        assert "heartbeat" not in {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}
    store = Store.for_workspace(ws)
    assert store.get_job("j1").heartbeat is None and store.get_job("j1").target == "y"
    store.beat("j1")
    assert store.get_job("j1").heartbeat is not None
    with sqlite3.connect(ws / "tabpilot.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_paths_are_stored_relative_to_the_workspace_and_read_absolute(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    store = Store.for_workspace(ws)
    _job(store)
    model = ws / "jobs" / "j1" / "candidates" / "lightgbm-000" / "model"
    _candidate(store, "lightgbm-000", status="Completed")
    store.update_candidate("j1", "lightgbm-000", artifact_dir=str(model))
    store.put_endpoint("ep", str(model))
    with sqlite3.connect(ws / "tabpilot.db") as conn:
        assert conn.execute("SELECT job_dir FROM jobs").fetchone()[0] == "jobs/j1"
        assert conn.execute("SELECT artifact_dir FROM candidates").fetchone()[0] == \
            "jobs/j1/candidates/lightgbm-000/model"
        assert conn.execute("SELECT model_dir FROM endpoints").fetchone()[0] == \
            "jobs/j1/candidates/lightgbm-000/model"
    # the workspace moved whole, and opened by its new path: everything is found there
    moved = tmp_path / "elsewhere"
    ws.rename(moved)
    again = Store.for_workspace(moved)
    assert again.get_job("j1").job_dir == str(moved.resolve() / "jobs" / "j1")
    assert again.get_candidate("j1", "lightgbm-000").artifact_dir == \
        str(moved.resolve() / "jobs/j1/candidates/lightgbm-000/model")
    assert again.get_endpoint("ep").model_dir == again.list_endpoints()[0].model_dir == \
        str(moved.resolve() / "jobs/j1/candidates/lightgbm-000/model")


def test_a_relative_path_is_taken_from_the_current_folder_when_stored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = Store.for_workspace(Path("ws"))
    _job(store, job_dir="ws/jobs/j1")
    monkeypatch.chdir("/")
    assert store.get_job("j1").job_dir == str((tmp_path / "ws" / "jobs" / "j1").resolve())


def test_older_rows_with_absolute_paths_and_paths_outside_stay_as_they_are(
        tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    store = Store.for_workspace(ws)
    _job(store)
    with sqlite3.connect(ws / "tabpilot.db") as conn:  # written by an older tabpilot
        conn.execute("UPDATE jobs SET job_dir = ?", (str(ws / "jobs" / "j1"),))
    assert store.get_job("j1").job_dir == str(ws / "jobs" / "j1")
    outside = tmp_path / "models" / "m"
    store.put_endpoint("ep", str(outside))
    assert store.get_endpoint("ep").model_dir == str(outside)
    store.put_endpoint("ep2", "s3://bucket/model")
    assert store.get_endpoint("ep2").model_dir == "s3://bucket/model"
    assert os.path.isabs(store.list_jobs()[0].job_dir)


def test_a_fresh_heartbeat_keeps_a_job_alive_whatever_its_pid_says(store: Store) -> None:
    """`describe` on another machine (or after the pid was reused) judges by the store."""
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    gone = int(finished.stdout)  # a pid no process has any more
    _job(store, "far", pid=gone, host="another-machine")
    _job(store, "near", pid=gone)
    store.beat("far")
    store.beat("near")
    for name in ("far", "near"):
        assert check_alive(store, store.get_job(name)).status == "InProgress"
    assert store.get_job("far").host == "another-machine"
