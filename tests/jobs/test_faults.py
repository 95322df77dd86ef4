"""Jobs that survive faults: a killed job process, a stop or an error in the final phase,
and `tabpilot resume`. Real jobs on small generated tables, in real processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tabpilot.automl import AutoML
from tabpilot.config import JobRequest
from tabpilot.jobs import status as st
from tabpilot.jobs.heartbeat import DEAD_REASON
from tabpilot.jobs.runner import TEST_PAUSE, JobRunner
from tabpilot.store import Store

sys.path.insert(0, str(Path(__file__).parent.parent / "serving"))
from servinglib import wait_until  # noqa: E402

HEARTBEAT = "0.5"  # seconds; the grace is then the minimum, 3 s
HANG = 180.0  # seconds: only against a hang, never a measure of speed


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, TABPILOT_HEARTBEAT_SECONDS=HEARTBEAT, **extra)
    env.pop("TABPILOT_WORKSPACE", None)
    return env


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tabpilot.cli", *args], cwd=cwd,
                          env=env or _env(), capture_output=True, text=True, timeout=HANG)


def _start(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A job in a process of its own, in its own process group (its trials too)."""
    return subprocess.Popen([sys.executable, "-m", "tabpilot.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def _wait(what: str, check, proc: subprocess.Popen | None = None) -> None:
    def ready() -> bool:
        if proc is not None and proc.poll() is not None and not check():
            raise AssertionError(f"the job ended before {what}: "
                                 f"{proc.stderr.read().decode()[-2000:]}")
        return check()

    wait_until(ready, HANG, what)  # a guard against hangs, not a speed check


def _completed(ws: Path, job: str) -> int:
    if not (ws / "tabpilot.db").is_file():
        return 0
    store = Store.for_workspace(ws)
    if not store.job_exists(job):
        return 0
    return sum(c.status == "Completed" for c in store.list_candidates(job))


def _kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # the job and its trial processes, at once
    proc.wait(timeout=30)


def _describe_until_ended(ws: Path, job: str, cwd: Path) -> dict:
    """`tabpilot describe` from other processes, until one sees the job ended."""
    seen: dict = {}

    def ended() -> bool:
        done = _cli("describe", job, "--workspace", str(ws), "--json", cwd=cwd)
        assert done.returncode == 0, done.stderr
        seen.update(json.loads(done.stdout))
        return seen["AutoMLJobStatus"] not in st.ACTIVE

    wait_until(ended, HANG, "the dead job marked Failed")
    return seen


def _assert_crashed(desc: dict) -> None:
    assert desc["AutoMLJobStatus"] == "Failed"
    assert desc["FailureReason"] == DEAD_REASON
    assert desc["EndTime"] is not None
    assert desc["CandidateCounts"]["InProgress"] == 0
    assert desc["CandidateCounts"]["Completed"] >= 1
    assert desc["LeaderboardLocation"] and Path(desc["LeaderboardLocation"]).is_file()


def _integrity(ws: Path) -> str:
    with sqlite3.connect(ws / "tabpilot.db") as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


@pytest.fixture
def table(tmp_path: Path, binary_frame) -> Path:
    path = tmp_path / "data" / "train.csv"
    path.parent.mkdir()
    binary_frame(200, seed=4).to_csv(path, index=False)
    return path


def _run_args(table: Path, name: str, ws: str, time_limit: int) -> list[str]:
    return ["run", str(table), "--target", "y", "--name", name, "--workspace", ws,
            "--time-limit", str(time_limit), "--algorithms", "lightgbm,linear",
            "--workers", "2", "--quiet"]


@pytest.mark.slow  # 30 s: a job killed, failed by readers, resumed to the end
def test_a_killed_job_is_failed_by_readers_and_resume_completes_it(
        tmp_path: Path, table: Path) -> None:
    """SIGKILL mid-search; describe from other processes; resume from another folder;
    predict from a third folder, the workspace given absolute (it was made relative)."""
    here, there, other = (tmp_path / d for d in ("a", "b", "c"))
    for folder in (here, there, other):
        folder.mkdir()
    ws = here / "ws"
    proc = _start(*_run_args(table, "crash-1", "ws", 20), cwd=here, env=_env())
    _wait("a finished candidate", lambda: _completed(ws, "crash-1") >= 1, proc)
    _kill(proc)
    desc = _describe_until_ended(ws.resolve(), "crash-1", cwd=there)
    _assert_crashed(desc)
    before = {c.name: c for c in Store.for_workspace(ws).list_candidates("crash-1")}
    kept = {n for n, c in before.items() if c.status == "Completed"}

    done = _cli("resume", "crash-1", "--time-limit", "15", "--workspace", str(ws.resolve()),
                "--json", cwd=there)
    assert done.returncode == 0, done.stderr[-3000:]
    desc = json.loads(done.stdout)
    assert desc["AutoMLJobStatus"] == "Completed", desc["FailureReason"]
    assert desc["FailureReason"] is None and desc["CandidateCounts"]["InProgress"] == 0
    after = {c.name: c for c in Store.for_workspace(ws).list_candidates("crash-1")}
    assert kept <= {n for n, c in after.items() if c.status == "Completed"}
    assert len(after) > len(before)  # the search went on (or at least the final phases ran)
    assert {before[n].params == after[n].params for n in before} == {True}
    assert Path(desc["LeaderboardLocation"]).is_file()
    assert _integrity(ws) == "ok"

    new_rows = pd.read_csv(table).drop(columns="y").head(5)
    new_rows.to_csv(other / "new.csv", index=False)
    done = _cli("predict", "crash-1", "new.csv", "-o", "out.csv",
                "--workspace", str(ws.resolve()), cwd=other)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(other / "out.csv")) == 5


def test_a_job_killed_in_its_ensemble_phase_is_failed_by_readers(
        tmp_path: Path, table: Path) -> None:
    ws = tmp_path / "ws"
    # 20 s: the limit is checked against the time reading took, slow on a loaded machine
    proc = _start(*_run_args(table, "crash-2", str(ws), 20), cwd=tmp_path,
                  env=_env(**{TEST_PAUSE: "ensemble:120"}))
    paused = ws / "jobs" / "crash-2" / ".test-paused-ensemble"
    _wait("the ensemble phase", paused.is_file, proc)
    _kill(proc)
    _assert_crashed(_describe_until_ended(ws, "crash-2", cwd=tmp_path))
    assert _integrity(ws) == "ok"


@pytest.mark.slow  # 22 s
def test_a_stop_in_the_final_phase_leaves_no_candidate_in_progress(
        tmp_path: Path, table: Path) -> None:
    ws = tmp_path / "ws"
    proc = _start(*_run_args(table, "stop-1", str(ws), 20), cwd=tmp_path,
                  env=_env(**{TEST_PAUSE: "ensemble:120"}))
    _wait("the ensemble phase", (ws / "jobs" / "stop-1" / ".test-paused-ensemble").is_file,
          proc)
    assert _cli("stop", "stop-1", "--workspace", str(ws), cwd=tmp_path).returncode == 0
    assert proc.wait(timeout=HANG) == 130  # Stopped
    desc = json.loads(_cli("describe", "stop-1", "--workspace", str(ws), "--json",
                           cwd=tmp_path).stdout)
    assert desc["AutoMLJobStatus"] == "Stopped"
    assert desc["CandidateCounts"]["InProgress"] == 0
    # and a stopped job resumes to completion
    done = _cli("resume", "stop-1", "--time-limit", "8", "--workspace", str(ws), "--json",
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["AutoMLJobStatus"] == "Completed"


class _FailsWhileTrialsRun(JobRunner):
    """An error in the job's own process while trials still run (the second result)."""

    def _record(self, result, prepared, progress) -> None:
        super()._record(result, prepared, progress)
        if progress.done + progress.failed >= 2:
            raise RuntimeError("injected: the job's loop broke")


class _FailsInTheFinalPhase(JobRunner):
    """An error in a final phase (the stack), after the executor was shut down once."""

    def _stack(self, *args, **kwargs) -> bool:
        self.executor.shutdown()
        raise RuntimeError("injected: the stack broke")


@pytest.mark.parametrize("runner", [_FailsWhileTrialsRun, _FailsInTheFinalPhase])
def test_a_job_failing_anywhere_leaves_no_candidate_in_progress(
        tmp_path: Path, binary_frame, runner: type[JobRunner]) -> None:
    request = JobRequest.build(target="y", name="fails-1", time_limit=12,
                               algorithms=["lightgbm", "linear"], n_workers=2,
                               stacking="on")
    ws = tmp_path / "ws"
    with pytest.raises(RuntimeError, match="injected"):
        runner(request, ws).run(binary_frame(200, seed=5))
    store = Store.for_workspace(ws)
    job = store.get_job("fails-1")
    assert job.status == "Failed" and "injected" in job.failure_reason
    rows = store.list_candidates("fails-1")
    assert rows and not [c.name for c in rows if c.status == "InProgress"]
    assert all(c.failure_reason for c in rows if c.status == "Stopped")
    assert (Path(job.job_dir) / "leaderboard.csv").is_file()


@pytest.mark.slow  # 16 s
def test_resume_refuses_a_completed_or_running_job_in_one_line(
        tmp_path: Path, binary_frame) -> None:
    ws = tmp_path / "ws"
    AutoML("y", workspace=ws, name="done-1", time_limit=12, algorithms=["linear"],
           n_workers=1).fit(binary_frame(200))
    store = Store.for_workspace(ws)
    assert store.get_job("done-1").status == "Completed"
    store.create_job(name="busy-1", status="InProgress", secondary_status="ModelTuning",
                     target="y", input_uri="x.csv", request={"target": "y"},
                     job_dir=str(ws / "jobs" / "busy-1"), heartbeat=time.time() + 60)
    for name, words in (("done-1", "is Completed"), ("busy-1", "still running")):
        done = _cli("resume", name, "--workspace", str(ws), cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and "Traceback" not in done.stderr
    assert store.get_job("done-1").status == "Completed"
    assert store.get_job("busy-1").status == "InProgress"


def test_a_resumed_search_is_told_the_finished_trials_and_skips_their_portfolio() -> None:
    from tabpilot.metrics import METRICS
    from tabpilot.search import Finished, PortfolioThenTPE
    from tabpilot.tasks import ProblemType

    def strategy(**kw) -> PortfolioThenTPE:
        return PortfolioThenTPE(["lightgbm", "linear"], METRICS["F1"], ProblemType.BINARY,
                                200, **kw)

    first = strategy()
    asked = [first.ask() for _ in range(3)]
    history = [Finished(p.family, p.params, v) for p, v in zip(asked, [0.8, None, 0.7],
                                                               strict=True)]
    again = strategy(history=history, first_number=3)
    states = [t.state.name for t in again.study.trials if t.state.name != "WAITING"]
    assert states == ["COMPLETE", "FAIL", "COMPLETE"]
    assert again.n_portfolio == first.n_portfolio - sum(p.source == "portfolio" for p in asked)
    following = [again.ask() for _ in range(3)]
    assert [p.number for p in following] == [3, 4, 5]
    tried = [(p.family, p.params) for p in asked]
    assert all((p.family, p.params) not in tried for p in following if p.source == "portfolio")
