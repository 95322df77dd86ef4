"""What reviews feed: Model Monitor ground truth that a model-quality run merges with the
captured predictions (metrics equal scikit-learn's on the same pairs; flipped labels
break the constraints), and the retraining table a job trains on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pandas as pd
import pytest
from reviewlib import TOKEN, ThreadedServer, make_flow
from servinglib import build_model, churn_table, wait_until
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from tabpilot.monitor.quality import Pairs, run_model_quality, write_quality_baseline
from tabpilot.review.flows import LOOP
from tabpilot.review.routing import Route, loop_key, set_route
from tabpilot.store import Store
from tabpilot.tasks import ProblemType

HONEST, FLIPPED = 30, 12


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Two endpoints of one model, every prediction routed (a 100 % audit): reviewers of
    `churn` give the true label, those of `churn-b` the opposite one."""
    tmp = tmp_path_factory.mktemp("outputs")
    workspace = tmp / "ws"
    model_dir = build_model(tmp / "models" / "churn" / "model", n_estimators=10, compiled=False)
    store = Store.for_workspace(workspace)
    table = churn_table(HONEST + FLIPPED, seed=3)
    truth: dict[str, str] = {}
    for endpoint, flow in (("churn", "honest"), ("churn-b", "flipped")):
        store.put_endpoint(endpoint, str(model_dir), capture_percent=100.0)
        make_flow(store, flow, tmp / "out", task_count=1)
        set_route(store, Route(endpoint, flow, below=0.01, audit_percent=100))
    server = ThreadedServer(workspace, tmp / "s3")
    try:
        desk = server.app.state.review
        sent: list[tuple[str, str]] = []
        for i, row in table.iterrows():
            endpoint = "churn" if i < HONEST else "churn-b"
            event = f"{endpoint}-{i}"
            body = row.drop("label").to_frame().T.to_csv(index=False, header=False)
            wait_until(lambda body=body, endpoint=endpoint, event=event: httpx.post(
                f"{server.url}/endpoints/{endpoint}/invocations", content=body,
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/csv",
                         "X-Amzn-SageMaker-Inference-Id": event}).status_code == 200, 30,
                "the endpoint to answer")
            flip = {"yes": "no", "no": "yes"} if endpoint == "churn-b" else {}
            truth[event] = flip.get(row["label"], row["label"])
            sent.append((endpoint, event))
        names = {"auto-" + loop_key(e, ev, 0)[:40]: ev for e, ev in sent}
        wait_until(lambda: set(names) <= {r.name for r in store.list_resources(LOOP)}, 60,
                   "a loop per routed prediction", every=0.2)
        while (task := desk.next_task("alice")) is not None:
            desk.submit("alice", task.loop, truth[task.content["inferenceId"]])
        yield {"workspace": workspace, "store": store, "tmp": tmp, "truth": truth}
    finally:
        server.stop()


def _served(workspace: Path, endpoint: str) -> dict[str, str]:
    """inference id -> the label the endpoint answered, from its capture."""
    found = {}
    for path in (workspace / "capture" / endpoint).rglob("*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            answer = record["captureData"]["endpointOutput"]["data"].split(",")[0].strip()
            found[record["eventMetadata"]["inferenceId"]] = answer
    return found


def test_ground_truth_feeds_model_quality(reviewed: dict) -> None:
    workspace, truth = reviewed["workspace"], reviewed["truth"]
    served = _served(workspace, "churn")
    ids = sorted(served)
    assert len(ids) == HONEST
    y_true, y_pred = [truth[i] for i in ids], [served[i] for i in ids]
    now = datetime.now(UTC)
    good = run_model_quality("churn", workspace=workspace, problem_type="BinaryClassification",
                             now=now, positive_label="yes", output=reviewed["tmp"] / "good")
    metrics = good.execution.statistics["binary_classification_metrics"]
    assert metrics["accuracy"]["value"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    for name, score in (("precision", precision_score), ("recall", recall_score),
                        ("f1", f1_score)):
        assert metrics[name]["value"] == pytest.approx(
            score(y_true, y_pred, pos_label="yes", zero_division=0), abs=1e-12)
    constraints = reviewed["tmp"] / "baseline"
    write_quality_baseline(Pairs(ProblemType.BINARY, y_true, y_pred, positive="yes"),
                           constraints)
    assert good.execution.status == "Completed"
    flipped = run_model_quality("churn-b", workspace=workspace,
                                problem_type="BinaryClassification", now=now,
                                positive_label="yes", baseline_constraints=constraints,
                                output=reviewed["tmp"] / "flipped")
    assert flipped.execution.status == "CompletedWithViolations"
    broken = json.loads((flipped.output / "constraint_violations.json").read_text())
    assert any("accuracy" in v["metric_name"] for v in broken["violations"])


@pytest.mark.slow
def test_the_retraining_table_trains_a_job(reviewed: dict, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tabpilot.automl import AutoML
    from tabpilot.cli import app

    out = tmp_path / "retrain.csv"
    result = CliRunner().invoke(app, ["review", "export", "honest", "--retraining-table",
                                      str(out), "-w", str(reviewed["workspace"])])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert len(table) == HONEST and "label" in table
    assert {c for c in table if c.startswith("review_")} >= {"review_loop",
                                                             "review_model_prediction"}
    spec = out.with_name("retrain.features.json")
    assert "review_loop" not in json.loads(spec.read_text())["FeatureAttributeNames"]
    job = AutoML(target="label", time_limit=20, algorithms=["lightgbm"], max_candidates=2,
                 feature_types=str(spec), workspace=tmp_path / "ws", verbosity=0).fit(str(out))
    assert job.describe()["AutoMLJobStatus"] == "Completed"
    features = job.best_model().features
    assert features and not any(f.startswith("review_") for f in features)
