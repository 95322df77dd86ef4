"""Admission control with real processes: at most N hold a slot, the rest wait in line in
arrival order, and a killed holder or waiter frees its place at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.errors import ConfigError
from tabpilot.jobs import admission
from tabpilot.store import Store

sys.path.insert(0, str(Path(__file__).parent.parent / "serving"))
from servinglib import wait_until  # noqa: E402

HOLDER = """
import sys, time
from pathlib import Path
from tabpilot.jobs import admission
ws, name = Path(sys.argv[1]), sys.argv[2]
def waiting(ahead):
    (ws / f"{name}.waiting").write_text(str(ahead))
with admission.slot(ws, name, limit=1, on_wait=waiting):
    (ws / f"{name}.running").touch()
    while not (ws / f"{name}.release").exists():
        time.sleep(0.05)
"""


def _start(ws: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(ws), name])


def _until(condition, what: str) -> None:
    wait_until(condition, what=what)  # a guard against hangs, not a speed check


def test_jobs_wait_in_line_and_killed_ones_free_their_place(tmp_path: Path) -> None:
    a = _start(tmp_path, "job-a")
    _until(lambda: (tmp_path / "job-a.running").exists(), "job-a to run")
    waiters = {}
    for ahead, name in enumerate(("job-b", "job-c", "job-d")):
        waiters[name] = _start(tmp_path, name)
        _until(lambda n=name, k=ahead: admission.position(tmp_path, n) == k, f"{name} to queue")
    _until(lambda: (tmp_path / "job-d.waiting").exists(), "job-d to report its place")
    assert (tmp_path / "job-d.waiting").read_text() == "2"
    a.send_signal(signal.SIGKILL)  # the OOM killer: no cleanup runs
    a.wait()
    _until(lambda: (tmp_path / "job-b.running").exists(), "job-b to take the freed slot")
    assert admission.position(tmp_path, "job-b") is None
    assert admission.position(tmp_path, "job-c") == 0
    waiters["job-c"].send_signal(signal.SIGKILL)  # a waiter dies: it leaves the line
    waiters["job-c"].wait()
    _until(lambda: admission.position(tmp_path, "job-d") == 0, "job-d to move up")
    assert admission.position(tmp_path, "job-c") is None
    assert not (tmp_path / "job-d.running").exists()  # job-b still holds the one slot
    (tmp_path / "job-b.release").touch()
    assert waiters["job-b"].wait(timeout=60) == 0
    _until(lambda: (tmp_path / "job-d.running").exists(), "job-d to run last")
    (tmp_path / "job-d.release").touch()
    assert waiters["job-d"].wait(timeout=60) == 0
    assert not (tmp_path / "job-c.running").exists()


def test_the_limit_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("TABPILOT_MAX_CONCURRENT_JOBS", "3")
    assert admission.max_concurrent_jobs() == 3
    monkeypatch.setenv("TABPILOT_MAX_CONCURRENT_JOBS", "many")
    with pytest.raises(ConfigError, match="TABPILOT_MAX_CONCURRENT_JOBS"):
        admission.max_concurrent_jobs()
    monkeypatch.delenv("TABPILOT_MAX_CONCURRENT_JOBS")
    assert admission.max_concurrent_jobs() == max(1, (os.cpu_count() or 2) // 2)


def test_two_slots_hold_two_jobs_in_one_process(tmp_path: Path) -> None:
    with admission.slot(tmp_path, "one", limit=2) as first, \
            admission.slot(tmp_path, "two", limit=2) as second:
        assert {first, second} == {0, 1}
        assert admission.position(tmp_path, "one") is None


@pytest.mark.slow  # 14 s: two CLI jobs; the slot rules are tested in process above
def test_a_cli_job_waits_for_a_slot_and_its_time_starts_then(tmp_path: Path) -> None:
    """The slot is held here; `tabpilot run` validates its input, waits in line without
    creating its job, and starts (creation time, time limit) only once the slot is free."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
    table["y"] = np.where(table["a"] + 0.3 * rng.normal(size=120) > 0, "yes", "no")
    table.to_csv(tmp_path / "t.csv", index=False)
    workspace = tmp_path / "ws"
    env = {**os.environ, "TABPILOT_MAX_CONCURRENT_JOBS": "1"}
    with admission.slot(workspace, "holder", limit=1):
        run = subprocess.Popen(
            [sys.executable, "-m", "tabpilot.cli", "run", str(tmp_path / "t.csv"), "--target", "y",
             "--name", "queued", "--time-limit", "60", "--max-candidates", "2", "--algorithms",
             "linear", "--workspace", str(workspace)], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _until(lambda: admission.position(workspace, "queued") == 0, "the run to queue")
        assert not Store.for_workspace(workspace).job_exists("queued")
        released = time.time()
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert "waits for a slot" in err
    job = Store.for_workspace(workspace).get_job("queued")
    assert job.status == "Completed" and job.created >= released
