"""A finished job's folder published to an artifact store: each kept model directory its
own key, the rest of the folder the job's key, models pruned since an earlier publish
removed; the default store (the workspace itself) publishes nothing."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tabpilot.artifacts import verify
from tabpilot.artifacts.store import LocalArtifactStore, for_workspace
from tabpilot.jobs.publishing import publish_job

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))
from servinglib import build_model  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model(tmp_path_factory.mktemp("built") / "model", n_estimators=5,
                       compiled=False)


def _job(workspace: Path, model_dir: Path, candidates: list[str]) -> Path:
    job = workspace / "jobs" / "j1"
    for name in candidates:
        shutil.copytree(model_dir, job / "candidates" / name / "model")
        (job / "candidates" / name / "validation_predictions.npy").write_bytes(b"npy")
    (job / "leaderboard.csv").write_text("candidate\n" + "\n".join(candidates))
    (job / "DataExploration.ipynb").write_text("{}")
    (job / "candidates" / candidates[0] / ".tmp-model-x").mkdir()  # a save cut short
    (job / "candidates" / candidates[0] / ".tmp-model-x" / "half.pkl").write_bytes(b"x")
    return job


def test_a_job_publishes_its_models_and_its_files(tmp_path: Path, model_dir: Path) -> None:
    workspace, shared = tmp_path / "ws", LocalArtifactStore(tmp_path / "shared")
    job = _job(workspace, model_dir, ["c1", "c2"])
    assert publish_job(shared, workspace, job) == 3
    assert shared.list() == ["jobs/j1", "jobs/j1/candidates/c1/model",
                             "jobs/j1/candidates/c2/model"]
    verify(shared.get("jobs/j1/candidates/c2/model"))
    files = sorted(shared._listing("jobs/j1")["files"])
    assert files == ["DataExploration.ipynb", "candidates/c1/validation_predictions.npy",
                     "candidates/c2/validation_predictions.npy", "leaderboard.csv"]


def test_a_republished_job_drops_the_models_pruned_since(tmp_path: Path,
                                                        model_dir: Path) -> None:
    workspace, shared = tmp_path / "ws", LocalArtifactStore(tmp_path / "shared")
    job = _job(workspace, model_dir, ["c1", "c2"])
    publish_job(shared, workspace, job)
    shutil.rmtree(job / "candidates" / "c2")  # pruned by a resumed run
    publish_job(shared, workspace, job)
    assert shared.list("jobs/j1/candidates") == ["jobs/j1/candidates/c1/model"]
    assert "candidates/c2/validation_predictions.npy" not in \
        shared._listing("jobs/j1")["files"]


def test_the_default_store_publishes_nothing(tmp_path: Path, model_dir: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TABPILOT_ARTIFACTS", raising=False)
    workspace = tmp_path / "ws"
    job = _job(workspace, model_dir, ["c1"])
    before = sorted(p for p in workspace.rglob("*"))
    assert publish_job(for_workspace(workspace), workspace, job) == 0
    assert sorted(p for p in workspace.rglob("*")) == before
