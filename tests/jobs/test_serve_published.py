"""A job's model served, and loaded, on a machine that has the job's rows (the store) but
not its folder: read from the artifact store it was published to, verified, the same
predictions (`tabpilot --artifacts URL serve-model JOB`, `readable_model_dir`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tabpilot.errors import NotFoundError
from tabpilot.serving.ports import free_port

JOB = "to-delete"  # the job of conftest's published_job


@pytest.fixture
def elsewhere(published_job: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The workspace without the job's folder (its store rows kept), and the artifacts."""
    shutil.copytree(published_job / "ws", tmp_path / "ws")
    shutil.copytree(published_job / "shared", tmp_path / "shared")
    shutil.rmtree(tmp_path / "ws" / "jobs" / JOB)
    return tmp_path / "ws", tmp_path / "shared"


def test_the_model_is_read_from_the_artifact_store(elsewhere, published_job, binary_frame,
                                                   monkeypatch) -> None:
    from tabpilot import load_model
    from tabpilot.automl import readable_model_dir

    workspace, shared = elsewhere
    monkeypatch.setenv("TABPILOT_ARTIFACTS_CACHE", str(workspace.parent / "cache"))
    with pytest.raises(NotFoundError, match="neither published"):
        readable_model_dir(JOB, workspace=workspace, artifacts=str(workspace.parent / "nope"))
    folder = readable_model_dir(JOB, workspace=workspace, artifacts=str(shared))
    assert (folder / "manifest.json").is_file() and not folder.is_relative_to(workspace)
    rows = binary_frame(20, 7).drop(columns="y")
    here = load_model(JOB, workspace=published_job / "ws").predict(rows)
    assert list(load_model(JOB, workspace=workspace, artifacts=str(shared)).predict(rows)) == \
        list(here)


def test_serve_model_serves_a_job_without_its_folder(elsewhere, binary_frame,
                                                     tmp_path: Path) -> None:
    workspace, shared = elsewhere
    port = free_port()
    log = tmp_path / "serve.log"
    env = {"TABPILOT_ARTIFACTS_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    with open(log, "wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "tabpilot", "--artifacts", str(shared), "serve-model", JOB,
             "-w", str(workspace), "--port", str(port)], stdout=sink, stderr=subprocess.STDOUT,
            env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):  # a hang guard (up to ~2 min of polls), not a speed check
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/ping").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail(f"serve-model never answered /ping:\n{log.read_text()}")
        rows = binary_frame(5, 3).drop(columns="y")
        answer = httpx.post(f"{url}/invocations", content=rows.to_csv(index=False, header=False),
                            headers={"Content-Type": "text/csv"})
        assert answer.status_code == 200, answer.text
        assert len(answer.text.strip().splitlines()) == 5
        assert {line.split(",")[0] for line in answer.text.split()} <= {"yes", "no"}
    finally:
        server.terminate()
        server.wait(timeout=30)
    missing = subprocess.run(
        [sys.executable, "-m", "tabpilot", "serve-model", "no-such-job", "-w", str(workspace)],
        capture_output=True, text=True, env=env, timeout=120)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1, \
        missing.stderr
