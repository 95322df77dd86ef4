"""A real job with its metadata in PostgreSQL: run by the CLI with $TABPILOT_STORE, read
back through the Python API and by another CLI process with `--store`; the workspace holds
the job's files but no tabpilot.db."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.datasets import load_breast_cancer
from sqlalchemy import create_engine, text

from tabpilot import AutoML
from tabpilot.jobs.views import check_alive
from tabpilot.store import Store

pytestmark = pytest.mark.cluster


def _cli(*args: str, cwd: Path, store: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TABPILOT_")}
    env["COLUMNS"] = "200"
    if store is not None:
        env["TABPILOT_STORE"] = store
    return subprocess.run([sys.executable, "-m", "tabpilot", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_job_on_postgresql_is_seen_by_every_process(tmp_path: Path, postgres_url: str) -> None:
    frame = load_breast_cancer(as_frame=True).frame
    frame.to_csv(tmp_path / "train.csv", index=False)
    ran = _cli("run", "train.csv", "--target", "target", "--time-limit", "15",
               "--algorithms", "lightgbm,linear", "--name", "pg-job", "--workers", "2",
               "--no-distill", "--workspace", "ws", "--quiet", cwd=tmp_path, store=postgres_url)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert not (tmp_path / "ws" / "tabpilot.db").exists()  # the metadata went to the server

    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        status, host = conn.execute(text("SELECT status, host FROM jobs WHERE name = 'pg-job'")
                                    ).one()
        finished = conn.execute(text("SELECT count(*) FROM candidates WHERE job = 'pg-job' "
                                     "AND status = 'Completed'")).scalar()
    engine.dispose()
    assert status == "Completed" and host and finished >= 1

    # the Python API, in this process
    job = AutoML.attach("pg-job", workspace=tmp_path / "ws", store=postgres_url)
    row = check_alive(job.store, job.store.get_job("pg-job"))
    assert row.status == "Completed" and row.best_candidate
    best = job.store.get_candidate("pg-job", row.best_candidate)
    assert Path(best.artifact_dir).is_dir()  # stored relative, handed out under the workspace

    # another process, with the CLI's --store
    described = _cli("--store", postgres_url, "describe", "pg-job", "--json",
                     "--workspace", "ws", cwd=tmp_path)
    assert described.returncode == 0, described.stderr
    shown = json.loads(described.stdout)
    assert shown["AutoMLJobStatus"] == "Completed"
    assert shown["BestCandidate"]["CandidateName"] == row.best_candidate
    listed = _cli("--store", postgres_url, "candidates", "pg-job", "--json",
                  "--workspace", "ws", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    names = {c["CandidateName"] for c in json.loads(listed.stdout)["Candidates"]}
    assert row.best_candidate in names and len(names) >= finished


def test_a_second_store_on_the_same_server_sees_the_first_ones_writes(
        tmp_path: Path, postgres_url: str) -> None:
    one = Store.for_workspace(tmp_path / "a", url=postgres_url)
    two = Store.for_workspace(tmp_path / "b", url=postgres_url)
    one.put_endpoint("shared-ep", "s3://bucket/model")
    assert two.get_endpoint("shared-ep").model_dir == "s3://bucket/model"
    one.engine.dispose()
    two.engine.dispose()
