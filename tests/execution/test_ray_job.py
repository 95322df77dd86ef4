"""A real job whose trials run on a two-node Ray cluster (`tabpilot --executor ray://...`):
its leaderboard has the shape of the same job run locally (`make test-cluster`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from tabpilot import AutoML
from tabpilot.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from raycluster import RayCluster  # noqa: E402

pytestmark = pytest.mark.cluster


def tabpilot(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TABPILOT_")}
    return subprocess.run([sys.executable, "-m", "tabpilot", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    path = tmp_path_factory.mktemp("data") / "breast_cancer.csv"
    frame.to_csv(path, index=False)
    return path


def run_job(table: Path, workspace: Path, name: str, *executor: str
            ) -> tuple[pd.DataFrame, dict[str, str]]:
    """The job's leaderboard and each candidate's status."""
    done = tabpilot(*executor, "run", str(table), "--target", "target", "--name", name,
                    "--time-limit", "30", "--algorithms", "lightgbm,linear", "--quiet",
                    "-w", str(workspace))
    assert done.returncode == 0, done.stderr[-3000:]
    described = tabpilot("describe", name, "--json", "-w", str(workspace))
    assert json.loads(described.stdout)["AutoMLJobStatus"] == "Completed"
    store = Store.for_workspace(workspace, create=False)
    statuses = {c.name: c.status for c in store.list_candidates(name)}
    store.engine.dispose()
    return AutoML.attach(name, workspace=workspace).leaderboard(), statuses


def test_a_job_on_the_ray_cluster_gives_the_local_leaderboard_s_shape(
        ray_cluster: RayCluster, table: Path, tmp_path: Path) -> None:
    on_ray, ray_status = run_job(table, tmp_path / "ray", "on-ray", "--executor",
                                 ray_cluster.address)
    local, local_status = run_job(table, tmp_path / "local", "on-local")
    assert list(on_ray.columns) == list(local.columns)
    assert set(ray_status.values()) <= {"Completed", "Failed"}, ray_status
    assert set(local_status.values()) <= {"Completed", "Failed"}, local_status
    trial = r"^(lightgbm|linear)-\d{3}$"
    completed = [n for n, s in ray_status.items() if s == "Completed"]
    assert sum(bool(pd.Series([n]).str.match(trial).iloc[0]) for n in completed) >= 2, ray_status
    assert set(on_ray[on_ray["candidate"].str.match(trial)]["algorithm"]) == \
        set(local[local["candidate"].str.match(trial)]["algorithm"])
    # the best model, trained on the cluster, loads and predicts here
    best = AutoML.attach("on-ray", workspace=tmp_path / "ray").best_model()
    frame = pd.read_csv(table).drop(columns="target").head(5)
    assert set(best.predict(frame)) <= {"malignant", "benign"}
