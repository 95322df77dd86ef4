"""The encoded table shared by a job's trials (execution/sharedtable.py), and its cleanup.

(Named for the encodings: tests/jobs/test_shared_table.py is the caller's frame test.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.data.prepare import prepare
from tabpilot.data.split import make_split
from tabpilot.execution import LocalProcessExecutor, TrialContext, TrialTask
from tabpilot.execution.sharedtable import FOLDER, Reaper, SharedEncodings
from tabpilot.execution.trial import run_trial
from tabpilot.models import FAMILIES
from tabpilot.tasks import ProblemType


@pytest.fixture(scope="module")
def context() -> TrialContext:
    """3,000 rows, numbers and categories, a holdout: what a large job's trials see."""
    rng = np.random.default_rng(3)
    n = 3000
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.gamma(2.0, 1.0, n),
                       "c": rng.choice(["x", "y", "z", None], n),
                       "d": rng.choice([f"k{i}" for i in range(30)], n)})
    df["y"] = df["a"] * 2 + (df["c"] == "x") + rng.normal(0, 0.3, n)
    prepared = prepare(df, "y")
    split = make_split(prepared.y, False, 0.2, 1, 0)
    return TrialContext(X=prepared.X, y=prepared.y, split=split, schema=prepared.schema,
                        problem_type=prepared.problem_type, metric=prepared.metric,
                        classes=prepared.classes, job_name="shared", target="y",
                        n_threads=1, seed=0)


def _task(tmp_path: Path, name: str, family: str = "lightgbm", **extra) -> TrialTask:
    now = time.time()
    params = FAMILIES[family].portfolio(ProblemType.REGRESSION)[0]
    return TrialTask(name, family, params, str(tmp_path / name / "model"),
                     soft_deadline=now + 60, hard_deadline=now + 90, **extra)


def _collect(ex: LocalProcessExecutor, n: int) -> dict:
    results: dict = {}
    give_up = time.time() + 120
    while len(results) < n and time.time() < give_up:
        results.update({r.candidate: r for r in ex.poll(timeout=0.2)})
    assert len(results) == n, f"only {sorted(results)} came back"
    return results


def test_trials_of_a_style_map_one_encoding_and_score_as_a_trial_encoding_its_own(
        context: TrialContext, tmp_path: Path) -> None:
    alone = run_trial(context, _task(tmp_path / "alone", "lightgbm-000"))  # X in memory
    ex = LocalProcessExecutor(2)
    try:
        ex.start(context)
        shared = Path(ex.context_dir or "") / FOLDER
        ex.submit(_task(tmp_path, "lightgbm-000"))
        ex.submit(_task(tmp_path, "xgboost-001", "xgboost"))
        first = _collect(ex, 2)
        # written once for both native trials, by whichever came first
        assert sorted(p.name for p in shared.glob("*.npy")) == ["native.npy"]
        stamp = (shared / "native.npy").stat().st_mtime_ns
        ex.submit(_task(tmp_path, "lightgbm-002"))  # a later trial maps it, unchanged
        later = _collect(ex, 1)
        assert (shared / "native.npy").stat().st_mtime_ns == stamp
    finally:
        ex.shutdown()
    assert all(r.status == "Completed" for r in [*first.values(), *later.values()]), \
        [r.failure_reason for r in [*first.values(), *later.values()]]
    # the same model as encoding in the trial: the shared matrix changes nothing it learns
    assert first["lightgbm-000"].objective == pytest.approx(alone.objective, rel=1e-12)
    assert later["lightgbm-002"].objective == pytest.approx(alone.objective, rel=1e-12)
    assert ex.context_dir is None


def test_one_builder_while_others_wait_and_a_failed_build_leaves_nothing(
        tmp_path: Path) -> None:
    shared = SharedEncodings(tmp_path)
    calls: list[int] = []

    def failing():
        raise RuntimeError("killed while encoding")

    with pytest.raises(RuntimeError):
        shared.get("native", failing)
    assert list(tmp_path.glob("*.npy")) == [] and list(tmp_path.glob("*.partial")) == []

    def build():
        calls.append(1)
        time.sleep(0.3)  # the others arrive while it builds
        return {"fitted": True}, np.arange(12, dtype=np.float32).reshape(4, 3)

    got: list = []
    threads = [threading.Thread(target=lambda: got.append(shared.get("native", build)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(calls) == 1 and len(got) == 3
    for encoder, matrix in got:
        assert encoder == {"fitted": True}
        assert isinstance(matrix, np.memmap) and not matrix.flags.writeable
        assert matrix.sum() == 66


@pytest.mark.parametrize("kind", ["objects", "sparse"])
def test_a_matrix_that_cannot_be_mapped_is_built_by_each_trial(tmp_path: Path,
                                                               kind: str) -> None:
    import scipy.sparse as sp

    shared = SharedEncodings(tmp_path)
    calls: list[int] = []

    def build():
        calls.append(1)
        dense = np.arange(6, dtype=np.float64).reshape(3, 2)
        return "encoder", (dense.astype(object) if kind == "objects" else sp.csr_matrix(dense))

    for _ in range(2):
        encoder, matrix = shared.get("native", build)
        assert encoder == "encoder" and matrix.sum() == 15
    assert len(calls) == 2 and list(tmp_path.glob("*.npy")) == []
    assert (tmp_path / "native.unshared").exists()


def test_shutdown_removes_the_stored_table_and_the_reaper_exits(
        context: TrialContext) -> None:
    ex = LocalProcessExecutor(1)
    ex.start(context)
    folder = Path(ex.context_dir or "")
    reaper = ex._reaper
    assert reaper is not None and (folder / "table").is_dir() and (folder / FOLDER).is_dir()
    ex.shutdown()
    assert not folder.exists()
    assert reaper._process.poll() is not None  # it was told to go, and went


_KILLED_JOB = textwrap.dedent("""
    import sys, time
    import numpy as np, pandas as pd
    from tabpilot.data.prepare import prepare
    from tabpilot.data.split import make_split
    from tabpilot.execution import LocalProcessExecutor, TrialContext
    df = pd.DataFrame({"a": np.arange(200.0), "c": ["p", "q"] * 100, "y": np.arange(200.0)})
    p = prepare(df, "y")
    ctx = TrialContext(X=p.X, y=p.y, split=make_split(p.y, False, 0.2, 1, 0),
                       schema=p.schema, problem_type=p.problem_type, metric=p.metric,
                       classes=None, job_name="killed", target="y")
    ex = LocalProcessExecutor(1)
    ex.start(ctx)
    print(ex.context_dir, flush=True)
    time.sleep(600)
""")


def test_a_killed_job_leaves_no_stored_table_behind() -> None:
    how = signal.SIGKILL  # no shutdown, no atexit, no signal handler: only the reaper
    job = subprocess.Popen([sys.executable, "-c", _KILLED_JOB], stdout=subprocess.PIPE,
                           text=True)
    try:
        assert job.stdout is not None
        folder = Path(job.stdout.readline().strip())
        assert (folder / "table" / "columns.json").exists()
        os.kill(job.pid, how)
        job.wait(30)
        give_up = time.time() + 30
        while folder.exists() and time.time() < give_up:
            time.sleep(0.05)
        assert not folder.exists(), f"{folder} outlived the job killed by {how.name}"
    finally:
        if job.poll() is None:
            job.kill()


def test_the_reaper_removes_its_folder_when_released(tmp_path: Path) -> None:
    folder = tmp_path / "ctx"
    (folder / "inner").mkdir(parents=True)
    (folder / "inner" / "file").write_bytes(b"x" * 100)
    reaper = Reaper(folder)
    assert folder.exists()  # nothing happens while its maker lives
    time.sleep(0.2)
    assert folder.exists()
    reaper.release()
    assert not folder.exists()
