from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from tabpilot.errors import JobExistsError, NotFoundError
from tabpilot.store import Store


def _job(store: Store, name: str = "churn-1", status: str = "InProgress", **extra):
    fields = dict(name=name, status=status, secondary_status="Starting", target="label",
                  input_uri="/data/train.csv", problem_type="binary", metric="F1",
                  request={"target": "label", "time_limit": 60.0}, job_dir=f"/jobs/{name}")
    return store.create_job(**dict(fields, **extra))


def _candidate(store: Store, job: str = "churn-1", name: str = "churn-1-001", number: int = 1):
    store.add_candidate(job=job, name=name, number=number, algorithm="LightGBM",
                        family="lightgbm", params={"learning_rate": 0.05, "num_leaves": 31},
                        source="portfolio", status="InProgress")


def test_workspace_database_file_is_created(tmp_path: Path) -> None:
    Store.for_workspace(tmp_path / "new" / "ws")
    assert (tmp_path / "new" / "ws" / "tabpilot.db").is_file()


def test_create_and_get_job(store: Store) -> None:
    _job(store)
    job = store.get_job("churn-1")
    assert job.status == "InProgress"
    assert job.target == "label"
    assert job.request == {"target": "label", "time_limit": 60.0}
    assert job.stats == {}
    assert job.mode == "hpo"
    assert job.created == job.modified
    assert job.best_candidate is None
    assert store.job_exists("churn-1")
    assert not store.job_exists("other")


def test_job_survives_a_new_store_on_the_same_workspace(tmp_path: Path) -> None:
    _job(Store.for_workspace(tmp_path))
    assert Store.for_workspace(tmp_path).get_job("churn-1").metric == "F1"


def test_duplicate_job_name_raises(store: Store) -> None:
    _job(store)
    with pytest.raises(JobExistsError, match="'churn-1'"):
        _job(store, status="Completed")
    assert store.get_job("churn-1").status == "InProgress"


def test_get_unknown_job_raises(store: Store) -> None:
    with pytest.raises(NotFoundError, match="'ghost'"):
        store.get_job("ghost")


def test_list_jobs_newest_first(store: Store) -> None:
    for name in ["a", "b", "c"]:
        _job(store, name=name)
    assert [j.name for j in store.list_jobs()] == ["c", "b", "a"]


def test_list_jobs_of_an_empty_workspace(store: Store) -> None:
    assert store.list_jobs() == []


def test_update_job(store: Store) -> None:
    created = _job(store)
    store.update_job("churn-1", status="Completed", secondary_status="Completed",
                     best_candidate="churn-1-001", stats={"candidates": 3}, ended=123.0)
    job = store.get_job("churn-1")
    assert job.status == "Completed"
    assert job.best_candidate == "churn-1-001"
    assert job.stats == {"candidates": 3}
    assert job.ended == 123.0
    assert job.modified >= created.modified


def test_request_stop_marks_an_in_progress_job_stopping(store: Store) -> None:
    _job(store)
    assert store.request_stop("churn-1").status == "Stopping"
    assert store.get_job("churn-1").status == "Stopping"


def test_request_stop_leaves_a_finished_job_alone(store: Store) -> None:
    _job(store, status="Completed")
    assert store.request_stop("churn-1").status == "Completed"


def test_request_stop_of_an_unknown_job_raises(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.request_stop("ghost")


def test_candidates_round_trip(store: Store) -> None:
    _job(store)
    _candidate(store, name="churn-1-002", number=2)
    _candidate(store, name="churn-1-001", number=1)
    store.update_candidate("churn-1", "churn-1-001", status="Completed", objective=0.81,
                           threshold=0.35, fit_seconds=1.5, model_bytes=12345,
                           artifact_dir="/jobs/churn-1/candidates/churn-1-001")
    rows = store.list_candidates("churn-1")
    assert [r.name for r in rows] == ["churn-1-001", "churn-1-002"]
    row = store.get_candidate("churn-1", "churn-1-001")
    assert row.status == "Completed"
    assert row.objective == 0.81
    assert row.threshold == 0.35
    assert row.model_bytes == 12345
    assert row.params == {"learning_rate": 0.05, "num_leaves": 31}
    assert row.source == "portfolio"
    assert store.get_candidate("churn-1", "churn-1-002").status == "InProgress"


def test_get_unknown_candidate_raises(store: Store) -> None:
    _job(store)
    with pytest.raises(NotFoundError, match="'nope'"):
        store.get_candidate("churn-1", "nope")


def test_metrics_round_trip(store: Store) -> None:
    _job(store)
    _candidate(store)
    store.update_candidate("churn-1", "churn-1-001", metrics={"F1": 0.8, "AUC": 0.9})
    store.update_candidate("churn-1", "churn-1-001", metrics={"F1": 0.85, "LogLoss": None})
    store.update_candidate("churn-1", "churn-1-001", metrics={"F1": 0.7}, split="test")
    assert store.metrics("churn-1") == {
        "churn-1-001": {"validation": {"F1": 0.85, "AUC": 0.9, "LogLoss": None},
                        "test": {"F1": 0.7}},
    }
    assert store.metrics("other") == {}


def test_metrics_of_one_job_only(store: Store) -> None:
    for job in ["a", "b"]:
        _job(store, name=job)
        _candidate(store, job=job, name="c1")
        store.update_candidate(job, "c1", metrics={"F1": 0.5 if job == "a" else 0.6})
    assert store.metrics("b") == {"c1": {"validation": {"F1": 0.6}}}


def test_delete_job_removes_its_candidates_and_metrics(store: Store) -> None:
    _job(store)
    _candidate(store)
    store.update_candidate("churn-1", "churn-1-001", metrics={"F1": 0.8})
    store.delete_job("churn-1")
    assert not store.job_exists("churn-1")
    assert store.list_candidates("churn-1") == []
    assert store.metrics("churn-1") == {}


def test_database_is_in_wal_mode(tmp_path: Path) -> None:
    store = Store.for_workspace(tmp_path)
    _job(store)
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    with sqlite3.connect(tmp_path / "tabpilot.db") as conn:  # persistent in the file
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_another_store_reads_while_one_writes(tmp_path: Path) -> None:
    writer = Store.for_workspace(tmp_path)
    reader = Store.for_workspace(tmp_path)
    _job(writer)
    with writer.session() as s:
        s.execute(text("UPDATE jobs SET secondary_status = 'ModelTuning'"))
        # the write is not committed yet: the reader sees the old row and is not blocked
        assert reader.get_job("churn-1").secondary_status == "Starting"
    assert reader.get_job("churn-1").secondary_status == "ModelTuning"
