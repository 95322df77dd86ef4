"""A trial's files handed back through the artifact store (execution/handback.py), the
protocol a Ray trial on another node follows, run here without Ray: the real trial
function in a scratch folder, its candidate folder put under `jobs/<job>/trials/<trial>`,
fetched and verified by the job's side. Every test runs on a folder store (a shared
mount; `make test`) and on S3 (a real SeaweedFS server; marked `cluster`). The Ray half,
trials on a two-node cluster handing back through S3, is tests/execution/
test_ray_handback_s3.py."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.artifacts import load, verify
from tabpilot.artifacts.package import load as load_model_dir
from tabpilot.artifacts.store import (
    LocalArtifactStore,
    NotFoundError,
)
from tabpilot.data.prepare import prepare
from tabpilot.data.split import make_split
from tabpilot.execution import TrialContext, TrialResult, TrialTask
from tabpilot.execution.handback import plan, receive, run_there, trial_key
from tabpilot.execution.trial import VALIDATION_PREDICTIONS, run_trial
from tabpilot.models import FAMILIES
from tabpilot.tasks import ProblemType

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))
from servinglib import build_model  # noqa: E402
from storelib import Backend  # noqa: E402

JOB = "j1"


@pytest.fixture(scope="module")
def context() -> TrialContext:
    rng = np.random.default_rng(7)
    n = 80
    x = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    y = np.where(x + (colour == "red") + 0.3 * rng.normal(size=n) > 0.4, "pos", "neg")
    prepared = prepare(pd.DataFrame({"x": x, "colour": colour, "y": y}), "y")
    split = make_split(prepared.y, stratify=True, validation_fraction=0.25, n_folds=1, seed=0)
    return TrialContext(X=prepared.X, y=prepared.y, split=split, schema=prepared.schema,
                        problem_type=prepared.problem_type, metric=prepared.metric,
                        classes=prepared.classes, job_name=JOB, target="y")


def _task(workspace: Path, name: str = "linear-000", folder: str = "model",
          distill_of: dict | None = None) -> TrialTask:
    now = time.time()
    params = FAMILIES["linear"].portfolio(ProblemType.BINARY)[0]
    return TrialTask(name, "linear", params,
                     str(workspace / "jobs" / JOB / "candidates" / name / folder),
                     soft_deadline=now + 60, hard_deadline=now + 90, distill_of=distill_of)


def _trial(context: TrialContext) -> Callable[[TrialTask], TrialResult]:
    return lambda task: run_trial(context, task)


def test_a_trial_hands_back_through_the_store_and_the_job_gets_verified_files(
        backend: Backend, context: TrialContext, tmp_path: Path) -> None:
    workspace, store = tmp_path / "ws", backend.store
    task = _task(workspace)
    handback = plan(task, store, workspace)
    assert handback is not None and handback.key == f"jobs/{JOB}/trials/linear-000"
    there = run_there(task, handback, _trial(context))
    assert there.status == "Completed", there.failure_reason
    # the trial never wrote the job's folder (on another host it could not), and left
    # nothing behind where it ran
    assert not (workspace / "jobs").exists()
    assert not Path(there.details["written_at"]).exists()
    assert store.exists(handback.key)

    got = receive(there, task, store)
    assert got.status == "Completed" and got.artifact_dir == task.output_dir
    candidate = Path(task.output_dir).parent
    verify(candidate / "model")
    assert sorted(got.details["received"]) == sorted(p.name for p in candidate.iterdir())
    predictions = np.load(candidate / VALIDATION_PREDICTIONS)
    assert len(predictions) == len(context.split.validation_rows())
    labels = load(candidate / "model").predict(context.X.head(5))
    assert set(np.asarray(labels).tolist()) <= {"neg", "pos"}
    assert not store.exists(handback.key) and store.list(f"jobs/{JOB}") == []


def test_a_tampered_hand_back_is_a_failed_trial_not_a_candidate(
        backend: Backend, context: TrialContext, tmp_path: Path) -> None:
    workspace, store = tmp_path / "ws", backend.store
    task = _task(workspace)
    handback = plan(task, store, workspace)
    there = run_there(task, handback, _trial(context))
    assert there.status == "Completed", there.failure_reason
    backend.overwrite(f"{handback.key}/{VALIDATION_PREDICTIONS}", b"\x93NUMPY not these")
    got = receive(there, task, store)
    assert got.status == "Failed" and got.artifact_dir is None and got.objective is None
    assert "did not verify" in got.failure_reason
    assert "does not match its sha256" in got.failure_reason
    assert "\n" not in got.failure_reason
    assert not Path(task.output_dir).exists()
    assert not store.exists(handback.key)


def test_a_refit_hands_back_beside_the_candidate_s_kept_files(
        backend: Backend, context: TrialContext, tmp_path: Path) -> None:
    """A refit writes `model-refit` in a candidate folder that holds the first model: the
    hand-back adds its folder and leaves the rest of the candidate's files as they are."""
    workspace, store = tmp_path / "ws", backend.store
    first = _task(workspace)
    receive(run_there(first, plan(first, store, workspace), _trial(context)), first, store)
    candidate = Path(first.output_dir).parent
    kept = (candidate / "model" / "manifest.json").read_bytes()
    refit = _task(workspace, folder="model-refit")
    refit = TrialTask(**{**refit.__dict__, "refit_of": {
        "candidate": "linear-000", "infos": [], "objective": 0.5, "metrics": {},
        "threshold": 0.5}})
    handback = plan(refit, store, workspace)
    assert handback.key == f"jobs/{JOB}/trials/linear-000-model-refit"
    got = receive(run_there(refit, handback, _trial(context)), refit, store)
    assert got.status == "Completed", got.failure_reason
    verify(candidate / "model-refit")
    assert (candidate / "model" / "manifest.json").read_bytes() == kept


def test_a_distillation_s_teacher_is_handed_out_and_read_from_the_store(
        backend: Backend, tmp_path: Path) -> None:
    workspace, store = tmp_path / "ws", backend.store
    teacher = build_model(workspace / "jobs" / JOB / "candidates" / "teacher" / "model",
                          n_estimators=5)
    task = _task(workspace, "student", distill_of={"teacher": "teacher",
                                                   "teacher_dir": str(teacher)})
    handback = plan(task, store, workspace)
    assert handback.teacher == f"jobs/{JOB}/candidates/teacher/model"
    assert store.exists(handback.teacher)  # published where the job's end publishes it
    there = run_there(task, handback, teacher_reader)
    assert there.status == "Completed", there.failure_reason
    read = Path(there.details["teacher_read_at"])
    assert read.is_relative_to(Path(there.details["written_at"]))  # the node's copy
    assert there.details["teacher_type"] == type(load_model_dir(teacher).predictor).__name__


def teacher_reader(task: TrialTask) -> TrialResult:
    """A trial that reads its teacher, as a distillation does, and writes a candidate."""
    teacher_dir = task.distill_of["teacher_dir"]
    predictor = load_model_dir(teacher_dir).predictor
    out = Path(task.output_dir)
    build_model(out, n_estimators=3)
    return TrialResult(task.candidate, "Completed", objective=0.5, artifact_dir=str(out),
                       details={"teacher_read_at": teacher_dir,
                                "teacher_type": type(predictor).__name__})


def test_a_failed_trial_hands_back_nothing(backend: Backend, tmp_path: Path) -> None:
    workspace, store = tmp_path / "ws", backend.store
    task = _task(workspace)
    failed = run_there(task, plan(task, store, workspace),
                       lambda t: TrialResult(t.candidate, "Failed", failure_reason="boom"))
    assert failed.status == "Failed" and failed.failure_reason == "boom"
    assert store.list() == []
    assert receive(failed, task, store) == failed


def test_a_store_the_node_cannot_write_is_a_failed_trial_with_the_reason(
        context: TrialContext, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the store's folder should be")
    task = _task(workspace)
    got = run_there(task, plan(task, LocalArtifactStore(blocked), workspace), _trial(context))
    assert got.status == "Failed"
    assert got.failure_reason.startswith(
        f"handing the trial's files to the artifact store {blocked} failed on ")
    assert "\n" not in got.failure_reason


def test_the_default_store_keeps_today_s_paths_and_copies_nothing(
        context: TrialContext, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    task = _task(workspace)
    in_place = LocalArtifactStore(workspace, in_place=True)
    assert plan(task, in_place, workspace) is None
    there = run_there(task, None, _trial(context))
    assert there.artifact_dir == task.output_dir and "written_at" not in there.details
    verify(task.output_dir)
    assert receive(there, task, in_place) == there
    assert in_place.list() == []


def test_a_model_the_job_cannot_see_without_a_store_is_failed_with_the_fix(
        tmp_path: Path) -> None:
    gone = TrialResult("linear-000", "Completed", objective=0.9,
                       artifact_dir=str(tmp_path / "elsewhere" / "model"),
                       details={"host": "node-2"})
    got = receive(gone)
    assert got.status == "Failed" and "written on node-2" in got.failure_reason
    assert "--artifacts s3://" in got.failure_reason


def test_trial_keys_sit_beside_the_job_s_candidates(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert trial_key(ws / "jobs" / "j" / "candidates" / "xgb-001", "model", ws) == \
        "jobs/j/trials/xgb-001"
    assert trial_key(ws / "jobs" / "j" / "candidates" / "xgb-001", "model-refit", ws) == \
        "jobs/j/trials/xgb-001-model-refit"
    with pytest.raises(ValueError, match="not inside the workspace"):
        trial_key(tmp_path / "elsewhere" / "c", "model", ws)


# -- the two store operations the hand-back and a job's deletion add --------------------------


def test_get_into_replaces_the_key_s_entries_and_keeps_the_others(
        backend: Backend, tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / "model").mkdir(parents=True)
    (source / "model" / "a.bin").write_bytes(b"new")
    (source / "curves.json").write_text("{}")
    backend.store.put(source, "jobs/j1/trials/c")
    target = tmp_path / "target"
    (target / "model").mkdir(parents=True)
    (target / "model" / "stale.bin").write_bytes(b"old")
    (target / "insights.html").write_text("kept")
    placed = backend.store.get_into("jobs/j1/trials/c", target)
    assert placed == ["curves.json", "model"]
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == \
        ["curves.json", "insights.html", "model", "model/a.bin"]
    with pytest.raises(NotFoundError):
        backend.store.get_into("jobs/j1/trials/none", target)


def test_delete_tree_removes_published_and_unlisted_objects_under_a_key(
        backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    model = build_model(tmp_path / "m", n_estimators=3)
    store.put(model, "jobs/j1/candidates/c/model")
    store.put(model, "jobs/j10/candidates/c/model")  # a neighbour with the same start
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "job.json").write_text("{}")
    store.put(folder, "jobs/j1")
    backend.overwrite("jobs/j1/trials/cut-short/predictor.pkl", b"no listing")
    removed = store.delete_tree("jobs/j1")
    files = sum(p.is_file() for p in model.rglob("*"))
    assert removed == files + 1 + 1 + 1 + 1  # the model's, its listing, the job's two, orphan
    assert store.list("jobs/j1") == [] and not store.exists("jobs/j1")
    assert store.list() == ["jobs/j10/candidates/c/model"]
    verify(store.get("jobs/j10/candidates/c/model"))
    assert store.delete_tree("jobs/j1") == 0
