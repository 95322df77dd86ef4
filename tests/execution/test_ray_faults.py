"""Faults on a real Ray cluster (`make test-cluster`): the second node is killed while a
job's trials run on it; the job goes on to completion on the head node, and the trials
that were lost are Failed with a reason. The test owns its cluster (it loses a node)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from raycluster import RayCluster, missing  # noqa: E402

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    reason = missing()
    if reason:
        pytest.fail(f"a Ray cluster cannot start here: {reason}")
    with RayCluster() as started:
        yield started


def _table(path: Path, n: int = 40_000, seed: int = 0) -> Path:
    """Big enough that a forest's trial runs for seconds on one CPU."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 12))
    y = np.where(X[:, 0] - X[:, 1] + 0.5 * rng.normal(size=n) > 0, "yes", "no")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(12)]).assign(y=y)
    frame.to_csv(path, index=False)
    return path


def test_losing_a_node_mid_job_fails_its_trials_and_the_job_completes(
        cluster: RayCluster, tmp_path: Path) -> None:
    table = _table(tmp_path / "t.csv")
    workspace = tmp_path / "ws"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TABPILOT_")}
    job = subprocess.Popen(
        [sys.executable, "-m", "tabpilot", "--executor", cluster.address, "run", str(table),
         "--target", "y", "--name", "node-lost", "--time-limit", "90", "--algorithms",
         "random_forest,extra_trees", "--quiet", "-w", str(workspace)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        # the second node is lost while one of the job's trials runs on it
        second = cluster.workers[0]
        give_up = time.monotonic() + 240
        while time.monotonic() < give_up and job.poll() is None \
                and not cluster.trials_running_on(second):
            time.sleep(0.2)
        assert job.poll() is None, job.communicate()[1][-3000:]
        assert cluster.trials_running_on(second), "no trial ever ran on the second node"
        cluster.kill_node(second)
        _, stderr = job.communicate(timeout=400)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode == 0, stderr[-3000:]
    described = subprocess.run([sys.executable, "-m", "tabpilot", "describe", "node-lost",
                                "--json", "-w", str(workspace)], capture_output=True,
                               text=True, timeout=120, env=env)
    assert json.loads(described.stdout)["AutoMLJobStatus"] == "Completed"
    store = Store.for_workspace(workspace, create=False)
    rows = {c.name: c for c in store.list_candidates("node-lost")}
    store.engine.dispose()
    failed = {n: r.failure_reason for n, r in rows.items() if r.status == "Failed"}
    assert failed, {n: r.status for n, r in rows.items()}
    assert all(reason for reason in failed.values()), failed
    assert any("Ray" in reason for reason in failed.values()), failed
    # the job went on after the loss: a trial that ran to the end on the head node
    assert any(r.status == "Completed" and n.startswith(("random_forest", "extra_trees"))
               for n, r in rows.items()), {n: r.status for n, r in rows.items()}
