"""The Executor contract (execution/base.py), one suite run on every implementation: the
local process pool always, the Ray executor (marked `cluster`: `make test-cluster`) on a
real two-node Ray cluster reached at its ray:// address.

What every executor must do: run a trial on the job's shared context without shipping the
whole frame; report a raising, dying or overrunning trial as Failed with a reason and
never raise from `poll`; keep its slots; kill what runs on `shutdown`; hand trials the
TABPILOT_* settings of now; run the real trial function to a packaged model.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest

from tabpilot.artifacts import load
from tabpilot.execution import Executor, LocalProcessExecutor, TrialContext, TrialResult, TrialTask
from tabpilot.models import FAMILIES

# -- trial functions: module level, run in the executor's processes ---------------------------


def _record_pid(task: TrialTask) -> None:
    out = Path(task.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pid").write_text(str(os.getpid()))


def echo_trial(ctx: TrialContext, task: TrialTask) -> TrialResult:
    rows = np.arange(5)
    return TrialResult(
        task.candidate, "Completed", objective=float(len(ctx.y)), threshold=0.5,
        details={"pid": os.getpid(), "columns": ctx.columns, "job": ctx.job_name,
                 "params": task.params, "n_threads": ctx.n_threads,
                 "features": ctx.features(rows).to_dict("list"),
                 "raw": ctx.raw(ctx.split.validation_rows()[:3]).to_dict("list"),
                 "whole_frame_shipped": ctx.X is not None},
    )


def raising_trial(ctx: TrialContext, task: TrialTask) -> TrialResult:
    raise ValueError(f"bad hyperparameter alpha={task.params['alpha']}")


def sigkilled_trial(ctx: TrialContext, task: TrialTask) -> TrialResult:
    _record_pid(task)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def sleeping_trial(ctx: TrialContext, task: TrialTask) -> TrialResult:
    _record_pid(task)
    time.sleep(120)
    return TrialResult(task.candidate, "Completed", objective=1.0)


def settings_trial(ctx: TrialContext, task: TrialTask) -> TrialResult:
    seen = {k: v for k, v in os.environ.items() if k.startswith("TABPILOT_TEST_")}
    return TrialResult(task.candidate, "Completed", objective=1.0, details={"seen": seen})


def rendezvous_trial(ctx: TrialContext, task: TrialTask) -> TrialResult:
    """Completes only if its peer trial is running at the same time."""
    meeting = Path(task.params["meeting"])
    (meeting / task.candidate).write_text("here")
    peer = meeting / task.params["peer"]
    give_up = time.time() + 60
    while not peer.exists() and time.time() < give_up:
        time.sleep(0.05)
    if not peer.exists():
        return TrialResult(task.candidate, "Failed", failure_reason="peer never ran alongside")
    return TrialResult(task.candidate, "Completed", objective=1.0, details={"pid": os.getpid()})


# -- the implementations ----------------------------------------------------------------------

MakeExecutor = Callable[[int, Callable[[TrialContext, TrialTask], TrialResult] | None], Executor]


@pytest.fixture(params=["local", pytest.param("ray", marks=pytest.mark.cluster)])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def executor(kind: str, trial_context: TrialContext, request: pytest.FixtureRequest
             ) -> Iterator[MakeExecutor]:
    """`executor(n_workers, trial_fn)`: a started executor of this kind."""
    made: list[Executor] = []
    if kind == "ray":
        import ray.cloudpickle

        from tabpilot.execution.onray import RayExecutor

        # this module's trial functions travel by value: the nodes' workers cannot import
        # a test module (tabpilot's own functions travel by name, as in production)
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        address = request.getfixturevalue("ray_cluster").address

        def build(n: int, fn) -> Executor:
            return RayExecutor(n, address=address, trial_fn=fn)
    else:
        def build(n: int, fn) -> Executor:
            return LocalProcessExecutor(n, fn)

    def make(n_workers: int, trial_fn=None) -> Executor:
        ex = build(n_workers, trial_fn)
        ex.start(trial_context)
        made.append(ex)
        return ex

    yield make
    for ex in made:
        ex.shutdown()


def make_task(tmp_path: Path, name: str, hard_in: float = 60.0, family: str = "linear",
              params: dict | None = None) -> TrialTask:
    now = time.time()
    return TrialTask(candidate=name, family=family, params=params or {},
                     output_dir=str(tmp_path / name / "model"),
                     soft_deadline=now + hard_in * 0.8, hard_deadline=now + hard_in)


def collect(executor: Executor, n: int, timeout: float = 90.0) -> dict[str, TrialResult]:
    results: dict[str, TrialResult] = {}
    give_up = time.time() + timeout
    while len(results) < n and time.time() < give_up:
        for r in executor.poll(timeout=0.2):
            assert r.candidate not in results
            results[r.candidate] = r
    assert len(results) == n, f"only {sorted(results)} came back within {timeout}s"
    return results


def read_pid(tmp_path: Path, name: str, timeout: float = 60.0) -> int:
    path = tmp_path / name / "model" / "pid"
    give_up = time.time() + timeout
    while time.time() < give_up:
        if path.exists() and path.read_text():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"trial {name} never started")


def gone(pid: int, within: float = 15.0) -> bool:
    give_up = time.time() + within
    while time.time() < give_up:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


# -- the contract -----------------------------------------------------------------------------


def test_a_trial_runs_on_the_shared_context_without_the_whole_frame(
        executor, trial_context: TrialContext, tmp_path: Path) -> None:
    ex = executor(1, echo_trial)
    ex.submit(make_task(tmp_path, "echo-000", params={"alpha": 2}))
    assert ex.running() == ["echo-000"]
    result = collect(ex, 1)["echo-000"]
    assert result.status == "Completed", result.failure_reason
    assert result.objective == float(len(trial_context.y))
    assert result.details["whole_frame_shipped"] is False
    assert result.details["columns"] == list(trial_context.X.columns)
    assert result.details["job"] == "executor-test"
    assert result.details["params"] == {"alpha": 2}
    assert result.details["n_threads"] == trial_context.n_threads
    assert result.details["pid"] != os.getpid()
    # the rows a trial reads are the job's rows, whatever the table travelled as
    want = trial_context.X.iloc[:5]
    assert result.details["features"]["colour"] == want["colour"].tolist()
    assert np.allclose(result.details["features"]["x"], want["x"].to_numpy(), atol=1e-6)
    rows = trial_context.split.validation_rows()[:3]
    assert result.details["raw"]["colour"] == trial_context.X.iloc[rows]["colour"].tolist()
    assert ex.running() == []


def test_a_raising_trial_comes_back_failed_with_the_exception_text(
        executor, tmp_path: Path) -> None:
    ex = executor(1, raising_trial)
    ex.submit(make_task(tmp_path, "raise-000", params={"alpha": -1}))
    result = collect(ex, 1)["raise-000"]
    assert result.status == "Failed"
    assert result.failure_reason == "ValueError: bad hyperparameter alpha=-1"
    assert result.objective is None


def test_a_trial_whose_process_dies_comes_back_failed_with_a_reason(
        executor, tmp_path: Path) -> None:
    ex = executor(1, sigkilled_trial)
    ex.submit(make_task(tmp_path, "dead-000"))
    result = collect(ex, 1)["dead-000"]
    assert result.status == "Failed"
    assert result.objective is None and result.artifact_dir is None
    reason = result.failure_reason or ""
    assert "killed" in reason or "died" in reason, reason
    assert gone(read_pid(tmp_path, "dead-000"))
    assert ex.running() == [] and ex.free_slots() == 1


def test_a_trial_past_its_hard_deadline_is_killed_and_reported_as_timed_out(
        executor, kind: str, tmp_path: Path) -> None:
    ex = executor(1, sleeping_trial)
    # a Ray worker may take seconds to start on a busy machine: the deadline leaves it that
    ex.submit(make_task(tmp_path, "slow-000", hard_in=2.0 if kind == "local" else 8.0))
    pid = read_pid(tmp_path, "slow-000")
    result = collect(ex, 1, timeout=60)["slow-000"]
    assert result.status == "Failed"
    assert "timed out" in (result.failure_reason or "")
    assert gone(pid)
    assert ex.running() == [] and ex.free_slots() == 1


def test_two_slots_run_two_trials_at_the_same_time(executor, tmp_path: Path) -> None:
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    ex = executor(2, rendezvous_trial)
    ex.submit(make_task(tmp_path, "a-000", params={"meeting": str(meeting), "peer": "b-001"}))
    ex.submit(make_task(tmp_path, "b-001", params={"meeting": str(meeting), "peer": "a-000"}))
    assert sorted(ex.running()) == ["a-000", "b-001"]
    assert ex.free_slots() == 0
    results = collect(ex, 2)
    assert {r.status for r in results.values()} == {"Completed"}, results
    assert results["a-000"].details["pid"] != results["b-001"].details["pid"]
    assert ex.free_slots() == 2


def test_slots_are_kept_and_a_submit_without_one_is_refused(executor, tmp_path: Path) -> None:
    ex = executor(2, sleeping_trial)
    assert ex.free_slots() == 2
    ex.submit(make_task(tmp_path, "s-000"))
    ex.submit(make_task(tmp_path, "s-001"))
    assert ex.free_slots() == 0
    with pytest.raises(RuntimeError, match="no free slot"):
        ex.submit(make_task(tmp_path, "s-002"))
    assert sorted(ex.running()) == ["s-000", "s-001"]
    assert ex.poll(timeout=0.1) == []


def test_shutdown_kills_running_trials_and_returns_their_names(
        executor, tmp_path: Path) -> None:
    ex = executor(2, sleeping_trial)
    ex.submit(make_task(tmp_path, "k-000"))
    ex.submit(make_task(tmp_path, "k-001"))
    pids = [read_pid(tmp_path, "k-000"), read_pid(tmp_path, "k-001")]
    assert sorted(ex.shutdown()) == ["k-000", "k-001"]
    assert all(gone(p) for p in pids)
    assert ex.running() == [] and ex.free_slots() == 2
    assert ex.poll(timeout=0.1) == []
    assert ex.shutdown() == []


def test_a_trial_sees_the_caller_s_tabpilot_settings_of_now(
        executor, tmp_path: Path, monkeypatch) -> None:
    ex = executor(1, settings_trial)
    monkeypatch.setenv("TABPILOT_TEST_A", "1")
    monkeypatch.setenv("TABPILOT_TEST_B", "gone later")
    ex.submit(make_task(tmp_path, "first"))
    assert collect(ex, 1)["first"].details["seen"] == {"TABPILOT_TEST_A": "1",
                                                       "TABPILOT_TEST_B": "gone later"}
    monkeypatch.setenv("TABPILOT_TEST_A", "2")
    monkeypatch.delenv("TABPILOT_TEST_B")
    ex.submit(make_task(tmp_path, "second"))
    assert collect(ex, 1)["second"].details["seen"] == {"TABPILOT_TEST_A": "2"}


def test_the_real_trial_fits_and_packages_a_model(
        executor, trial_context: TrialContext, tmp_path: Path) -> None:
    ex = executor(1, None)
    params = FAMILIES["linear"].portfolio(trial_context.problem_type)[0]
    ex.submit(make_task(tmp_path, "linear-000", hard_in=90.0, params=params))
    result = collect(ex, 1, timeout=120)["linear-000"]
    assert result.status == "Completed", result.failure_reason
    assert result.objective is not None and 0.0 <= result.objective <= 1.0
    assert set(result.metrics) >= {"F1", "Accuracy", "AUC"}
    assert result.model_bytes is not None and result.model_bytes > 0
    assert result.artifact_dir == str(tmp_path / "linear-000" / "model")
    model = load(result.artifact_dir)
    labels = model.predict(trial_context.X.head(5))
    assert set(np.asarray(labels).tolist()) <= {"neg", "pos"}
