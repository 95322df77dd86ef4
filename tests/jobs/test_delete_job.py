"""`tabpilot delete JOB` (jobs/deleting.py): an ended job removed from the store, the
workspace and the artifact store; refused while it runs or while an endpoint or a
SageMaker model uses its files. One real job, published to a folder artifact store, is
copied for each test (a workspace holds relative paths, so a copy is a workspace)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tabpilot.artifacts.store import LocalArtifactStore
from tabpilot.store import Store

JOB = "to-delete"  # the job of conftest's published_job


@pytest.fixture
def copy(published_job: Path, tmp_path: Path) -> tuple[Path, Path]:
    template = published_job
    shutil.copytree(template / "ws", tmp_path / "ws")
    shutil.copytree(template / "shared", tmp_path / "shared")
    return tmp_path / "ws", tmp_path / "shared"


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_delete_removes_the_rows_the_folder_and_every_key(copy, cli) -> None:
    workspace, shared = copy
    published = LocalArtifactStore(shared)
    assert f"jobs/{JOB}" in published.list() and published.list(f"jobs/{JOB}/candidates")
    # a put cut short left files without a listing: deleting the job removes them too
    orphan = shared / "jobs" / JOB / "trials" / "linear-009" / "model" / "predictor.pkl"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"half")
    objects = len(_files(shared))

    done = cli("--artifacts", str(shared), "delete", JOB, workspace=workspace)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(f"job {JOB} deleted: ")
    assert f"{objects} object(s) under {shared}/jobs/{JOB}" in done.stdout
    assert _files(shared) == []
    assert not (workspace / "jobs" / JOB).exists()
    store = Store.for_workspace(workspace, create=False)
    assert not store.job_exists(JOB) and store.list_candidates(JOB) == []
    store.engine.dispose()
    again = cli("delete", JOB, workspace=workspace)
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and JOB in again.stderr


def test_delete_with_the_default_store_removes_the_folder_and_rows(copy, cli) -> None:
    workspace, shared = copy
    done = cli("delete", JOB, workspace=workspace)
    assert done.returncode == 0, done.stderr
    assert "object(s)" not in done.stdout  # the workspace is the store: nothing else to do
    assert not (workspace / "jobs" / JOB).exists()
    assert f"jobs/{JOB}" in LocalArtifactStore(shared).list()  # another store: untouched


def test_delete_is_refused_while_an_endpoint_serves_the_job_s_model(copy, cli) -> None:
    workspace, shared = copy
    assert cli("deploy", JOB, "--endpoint", "live", workspace=workspace).returncode == 0
    refused = cli("--artifacts", str(shared), "delete", JOB, workspace=workspace)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "endpoint live" in refused.stderr and "tabpilot undeploy live" in refused.stderr
    assert (workspace / "jobs" / JOB).is_dir() and f"jobs/{JOB}" in LocalArtifactStore(shared).list()
    assert cli("undeploy", "live", workspace=workspace).returncode == 0
    assert cli("--artifacts", str(shared), "delete", JOB, workspace=workspace).returncode == 0


def test_delete_is_refused_while_a_sagemaker_model_names_the_job_s_files(copy, cli) -> None:
    workspace, _ = copy
    store = Store.for_workspace(workspace, create=False)
    best = store.get_job(JOB).best_candidate
    model_dir = workspace / "jobs" / JOB / "candidates" / best / "model"
    store.add_resource("model", "kept-model", {"request": {}, "model_dir": str(model_dir)})
    refused = cli("delete", JOB, workspace=workspace)
    assert refused.returncode == 2 and "SageMaker model kept-model" in refused.stderr
    assert "DeleteModel" in refused.stderr and store.job_exists(JOB)
    store.engine.dispose()


def test_delete_is_refused_while_the_job_runs(copy, cli) -> None:
    workspace, _ = copy
    store = Store.for_workspace(workspace, create=False)
    store.update_job(JOB, status="InProgress", heartbeat=time.time())
    refused = cli("delete", JOB, workspace=workspace)
    assert refused.returncode == 2
    assert f"job {JOB} is InProgress; stop it (tabpilot stop {JOB})" in refused.stderr
    assert store.job_exists(JOB) and (workspace / "jobs" / JOB).is_dir()
    store.engine.dispose()


def test_a_bad_or_unknown_name_is_one_line_and_creates_nothing(cli, tmp_path: Path) -> None:
    bad = cli("delete", "../x", workspace=tmp_path / "ws")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "job name" in bad.stderr
    unknown = cli("delete", "nope", workspace=tmp_path / "ws")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert not (tmp_path / "ws").exists()
