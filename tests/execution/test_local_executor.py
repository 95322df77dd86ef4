"""LocalProcessExecutor with real forked trial processes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from tabpilot.artifacts import load
from tabpilot.execution import LocalProcessExecutor, TrialContext, TrialResult, TrialTask
from tabpilot.models import FAMILIES

# -- trial functions: module level, run in the forked children ------------------------------


def _record_pid(task: TrialTask) -> None:
    out = Path(task.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pid").write_text(str(os.getpid()))


def sigkilled_trial(ctx: TrialContext, task: TrialTask) -> TrialResult:
    _record_pid(task)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def raising_trial(ctx: TrialContext, task: TrialTask) -> TrialResult:
    raise ValueError(f"bad hyperparameter alpha={task.params['alpha']}")


def exiting_trial(ctx: TrialContext, task: TrialTask) -> TrialResult:
    os._exit(3)


def sleeping_trial(ctx: TrialContext, task: TrialTask) -> TrialResult:
    _record_pid(task)
    time.sleep(120)
    return TrialResult(task.candidate, "Completed", objective=1.0)


def echo_trial(ctx: TrialContext, task: TrialTask) -> TrialResult:
    """Reports what it saw of the shared context."""
    return TrialResult(
        task.candidate, "Completed", objective=float(len(ctx.y)), threshold=0.5,
        details={"pid": os.getpid(), "columns": ctx.columns, "job": ctx.job_name,
                 "classes": ctx.classes, "params": task.params,
                 "features": list(ctx.features(np.arange(3)).columns),
                 "whole_frame_shipped": ctx.X is not None},
    )


def settings_trial(ctx: TrialContext, task: TrialTask) -> TrialResult:
    """Reports the TABPILOT_* settings its process sees."""
    seen = {k: v for k, v in os.environ.items() if k.startswith("TABPILOT_TEST_")}
    return TrialResult(task.candidate, "Completed", objective=1.0, details={"seen": seen})


def rendezvous_trial(ctx: TrialContext, task: TrialTask) -> TrialResult:
    """Completes only if its peer trial is running at the same time."""
    meeting = Path(task.params["meeting"])
    (meeting / task.candidate).write_text("here")
    peer = meeting / task.params["peer"]
    give_up = time.time() + 30
    while not peer.exists() and time.time() < give_up:
        time.sleep(0.05)
    if not peer.exists():
        return TrialResult(task.candidate, "Failed", failure_reason="peer never ran alongside")
    return TrialResult(task.candidate, "Completed", objective=1.0, details={"pid": os.getpid()})


# -- helpers ----------------------------------------------------------------------------------


def make_task(tmp_path: Path, name: str, hard_in: float = 60.0, family: str = "linear",
              params: dict | None = None) -> TrialTask:
    now = time.time()
    return TrialTask(candidate=name, family=family, params=params or {},
                     output_dir=str(tmp_path / name / "model"),
                     soft_deadline=now + hard_in * 0.8, hard_deadline=now + hard_in)


def collect(executor: LocalProcessExecutor, n: int, timeout: float = 60.0
            ) -> dict[str, TrialResult]:
    results: dict[str, TrialResult] = {}
    give_up = time.time() + timeout
    while len(results) < n and time.time() < give_up:
        for r in executor.poll(timeout=0.2):
            assert r.candidate not in results
            results[r.candidate] = r
    assert len(results) == n, f"only {sorted(results)} came back within {timeout}s"
    return results


def read_pid(tmp_path: Path, name: str, timeout: float = 30.0) -> int:
    path = tmp_path / name / "model" / "pid"
    give_up = time.time() + timeout
    while time.time() < give_up:
        if path.exists() and path.read_text():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"trial {name} never started")


def gone(pid: int) -> bool:
    if not psutil.pid_exists(pid):
        return True
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def executor(trial_context: TrialContext):
    made: list[LocalProcessExecutor] = []

    def make(n_workers: int, trial_fn) -> LocalProcessExecutor:
        ex = LocalProcessExecutor(n_workers, trial_fn)
        ex.start(trial_context)
        made.append(ex)
        return ex

    yield make
    for ex in made:
        ex.shutdown()


# -- tests ------------------------------------------------------------------------------------


def test_completed_trial_returns_its_result_computed_on_the_shared_context(
        executor, trial_context: TrialContext, tmp_path: Path) -> None:
    ex = executor(1, echo_trial)
    ex.submit(make_task(tmp_path, "echo-000", params={"alpha": 2}))
    result = collect(ex, 1)["echo-000"]
    assert result.status == "Completed"
    assert result.objective == float(len(trial_context.y))
    assert result.threshold == 0.5
    assert result.details["columns"] == list(trial_context.X.columns)
    # the table came as a column store, not as a pickled frame
    assert result.details["whole_frame_shipped"] is False
    assert result.details["features"] == trial_context.schema.features
    assert result.details["job"] == "executor-test"
    assert result.details["classes"] == ["neg", "pos"]
    assert result.details["params"] == {"alpha": 2}
    assert result.details["pid"] != os.getpid()  # it ran in another process
    assert ex.running() == []


def test_sigkilled_trial_comes_back_failed_as_killed_out_of_memory(
        executor, tmp_path: Path) -> None:
    ex = executor(1, sigkilled_trial)
    ex.submit(make_task(tmp_path, "oom-000"))
    result = collect(ex, 1)["oom-000"]
    assert result.status == "Failed"
    reason = result.failure_reason or ""
    assert "killed" in reason
    assert "SIGKILL" in reason
    assert "out of memory" in reason
    assert result.objective is None
    assert result.artifact_dir is None
    assert gone(read_pid(tmp_path, "oom-000"))
    assert ex.running() == []
    assert ex.free_slots() == 1


def test_raising_trial_comes_back_failed_with_the_exception_text(
        executor, tmp_path: Path) -> None:
    ex = executor(1, raising_trial)
    ex.submit(make_task(tmp_path, "raise-000", params={"alpha": -1}))
    result = collect(ex, 1)["raise-000"]
    assert result.status == "Failed"
    assert result.failure_reason == "ValueError: bad hyperparameter alpha=-1"
    assert result.objective is None


def test_trial_exiting_without_a_result_comes_back_failed_with_its_exit_code(
        executor, tmp_path: Path) -> None:
    ex = executor(1, exiting_trial)
    ex.submit(make_task(tmp_path, "exit-000"))
    result = collect(ex, 1)["exit-000"]
    assert result.status == "Failed"
    assert "exited with code 3" in (result.failure_reason or "")


def test_trial_past_its_hard_deadline_is_killed_and_reported_as_timed_out(
        executor, tmp_path: Path) -> None:
    ex = executor(1, sleeping_trial)
    ex.submit(make_task(tmp_path, "slow-000", hard_in=2.0))
    pid = read_pid(tmp_path, "slow-000")
    assert not gone(pid)
    result = collect(ex, 1, timeout=30)["slow-000"]
    assert result.status == "Failed"
    assert "timed out" in (result.failure_reason or "")
    assert "stopped" in (result.failure_reason or "")
    assert gone(pid)
    assert ex.running() == []
    assert ex.free_slots() == 1


def test_two_workers_run_two_trials_at_the_same_time(executor, tmp_path: Path) -> None:
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


def test_free_slots_accounting(executor, tmp_path: Path) -> None:
    ex = executor(2, sleeping_trial)
    assert ex.free_slots() == 2
    ex.submit(make_task(tmp_path, "s-000"))
    assert ex.free_slots() == 1
    ex.submit(make_task(tmp_path, "s-001"))
    assert ex.free_slots() == 0
    with pytest.raises(RuntimeError, match="no free slot"):
        ex.submit(make_task(tmp_path, "s-002"))
    assert sorted(ex.running()) == ["s-000", "s-001"]  # the refused task was not started
    assert not (tmp_path / "s-002").exists()
    assert ex.poll(timeout=0.1) == []
    assert ex.free_slots() == 0
    ex.shutdown()
    assert ex.free_slots() == 2


def test_finished_trial_frees_its_slot(executor, tmp_path: Path) -> None:
    ex = executor(2, echo_trial)
    ex.submit(make_task(tmp_path, "e-000"))
    assert ex.free_slots() == 1
    collect(ex, 1)
    assert ex.free_slots() == 2
    assert ex.running() == []


def test_at_least_one_worker_even_when_asked_for_none() -> None:
    assert LocalProcessExecutor(0, echo_trial).free_slots() == 1


def test_shutdown_kills_running_trials_and_returns_their_names(
        executor, tmp_path: Path) -> None:
    ex = executor(2, sleeping_trial)
    ex.submit(make_task(tmp_path, "k-000"))
    ex.submit(make_task(tmp_path, "k-001"))
    pids = [read_pid(tmp_path, "k-000"), read_pid(tmp_path, "k-001")]
    assert not any(gone(p) for p in pids)
    cut = ex.shutdown()
    assert sorted(cut) == ["k-000", "k-001"]
    assert all(gone(p) for p in pids)
    assert ex.running() == []
    assert ex.poll(timeout=0.1) == []
    assert ex.shutdown() == []  # nothing left to cut


def test_real_trial_fits_and_packages_a_model(
        trial_context: TrialContext, tmp_path: Path) -> None:
    """The default trial function on real data: a scored, packaged, timed linear model."""
    ex = LocalProcessExecutor(1)
    ex.start(trial_context)
    params = FAMILIES["linear"].portfolio(trial_context.problem_type)[0]
    try:
        ex.submit(make_task(tmp_path, "linear-000", hard_in=60.0, params=params))
        result = collect(ex, 1, timeout=60)["linear-000"]
    finally:
        ex.shutdown()
    assert result.status == "Completed", result.failure_reason
    assert result.objective is not None and 0.0 <= result.objective <= 1.0
    assert set(result.metrics) >= {"F1", "Accuracy", "AUC"}
    assert result.latency_ms_p50 is not None and result.latency_ms_p50 > 0
    assert result.throughput_rows_s is not None and result.throughput_rows_s > 0
    assert result.model_bytes is not None and result.model_bytes > 0
    assert result.artifact_dir == str(tmp_path / "linear-000" / "model")
    assert (Path(result.artifact_dir) / "manifest.json").is_file()
    model = load(result.artifact_dir)
    labels = model.predict(trial_context.X.head(5))
    assert set(np.asarray(labels).tolist()) <= {"neg", "pos"}


def test_a_trial_sees_the_caller_s_tabpilot_settings_of_now(
        executor, tmp_path: Path, monkeypatch) -> None:
    """The fork server outlives a job: a setting changed since it started (e.g.
    TABPILOT_COMPILED=0 before the second job of a notebook) still reaches the trials."""
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


def test_warm_up_starts_the_fork_server_before_any_trial() -> None:
    """A job warms the pool up while it analyses its data: the imports are not paid by
    the first trial (what lets a short job's first model finish in its time)."""
    from multiprocessing import forkserver

    from tabpilot.execution.local import LocalProcessExecutor

    executor = LocalProcessExecutor(1)
    executor.warm_up()
    assert forkserver._forkserver._forkserver_pid is not None
    executor.shutdown()
