"""Ray trials hand their files back through S3 (`make test-cluster`): a real two-node Ray
cluster on loopback (tests/execution/raycluster.py) and a real SeaweedFS server
(tests/store/seaweed.py). A trial writes in a scratch folder on its node, puts its
candidate folder under `jobs/<job>/trials/<trial>`, and the job fetches and verifies it;
a whole job with `--executor ray://... --artifacts s3://...` completes with a leaderboard
and publishes its models, with nothing left under `trials/`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.artifacts import load, verify
from tabpilot.artifacts.remote import FsspecArtifactStore
from tabpilot.execution import TrialContext, TrialTask
from tabpilot.execution.trial import VALIDATION_PREDICTIONS
from tabpilot.models import FAMILIES

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "store"))
import seaweed as s3_server  # noqa: E402  (tests/store's SeaweedFS fixtures, used here)
from raycluster import RayCluster  # noqa: E402

seaweed, s3_env, s3_prefix = s3_server.seaweed, s3_server.s3_env, s3_server.s3_prefix

pytestmark = pytest.mark.cluster


def test_ray_trials_hand_back_through_s3_and_arrive_verified(
        ray_cluster: RayCluster, trial_context: TrialContext, s3_prefix: str,
        tmp_path: Path) -> None:
    from tabpilot.execution.onray import RayExecutor

    workspace = tmp_path / "ws"
    store = FsspecArtifactStore(s3_prefix, tmp_path / "cache")
    executor = RayExecutor(2, address=ray_cluster.address)
    executor.hand_back_through(store, workspace)
    executor.start(trial_context)
    params = FAMILIES["linear"].portfolio(trial_context.problem_type)[0]
    now = time.time()
    names = ["linear-000", "linear-001"]
    try:
        for name in names:
            executor.submit(TrialTask(
                name, "linear", params,
                str(workspace / "jobs" / "executor-test" / "candidates" / name / "model"),
                soft_deadline=now + 90, hard_deadline=now + 120))
        results = {}
        give_up = time.time() + 180
        while len(results) < len(names) and time.time() < give_up:
            for result in executor.poll(timeout=0.5):
                results[result.candidate] = result
    finally:
        executor.shutdown()
    assert sorted(results) == names
    for name, result in results.items():
        assert result.status == "Completed", result.failure_reason
        candidate = workspace / "jobs" / "executor-test" / "candidates" / name
        assert result.artifact_dir == str(candidate / "model")
        verify(candidate / "model")
        assert (candidate / VALIDATION_PREDICTIONS).is_file()
        assert "model" in result.details["received"]
        # written in the node's scratch folder, never at the job's path
        assert not Path(result.details["written_at"]).is_relative_to(workspace)
        labels = load(candidate / "model").predict(trial_context.X.head(4))
        assert set(np.asarray(labels).tolist()) <= {"neg", "pos"}
    assert store.list("jobs/executor-test") == []  # the job took them: nothing left behind


def test_a_job_on_ray_and_s3_completes_and_publishes_with_no_trial_files_left(
        ray_cluster: RayCluster, s3_env, s3_prefix: str, tmp_path: Path) -> None:
    from sklearn.datasets import load_breast_cancer

    from tabpilot.automl import load_model
    from tabpilot.store import Store

    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    table = tmp_path / "breast_cancer.csv"
    frame.to_csv(table, index=False)
    workspace = tmp_path / "ws"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TABPILOT_")}
    done = subprocess.run(
        [sys.executable, "-m", "tabpilot", "--executor", ray_cluster.address, "--artifacts",
         s3_prefix, "run", str(table), "--target", "target", "--name", "ray-s3",
         "--time-limit", "30", "--algorithms", "lightgbm,linear", "--quiet", "-w",
         str(workspace)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    store = Store.for_workspace(workspace, create=False)
    job = store.get_job("ray-s3")
    candidates = store.list_candidates("ray-s3")
    store.engine.dispose()
    assert job.status == "Completed", job.failure_reason
    trials = [c for c in candidates if c.name.split("-")[0] in ("lightgbm", "linear")
              and c.name.count("-") == 1]
    completed = [c for c in trials if c.status == "Completed"]
    assert len(completed) >= 2, [(c.name, c.status, c.failure_reason) for c in trials]
    s3 = FsspecArtifactStore(s3_prefix, tmp_path / "cache")
    assert s3.list("jobs/ray-s3/trials") == []
    published = s3.list("jobs/ray-s3/candidates")
    key = f"jobs/ray-s3/candidates/{job.best_candidate}/model"
    assert key in published
    listing = json.loads(s3._read_bytes("jobs/ray-s3.published.json"))["files"]
    assert "leaderboard.csv" in listing
    model = load_model(f"{s3_prefix}/{key}")
    rows = pd.read_csv(table).drop(columns="target").head(5)
    assert set(model.predict(rows)) <= {"malignant", "benign"}
