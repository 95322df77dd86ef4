"""Model-quality monitoring: metrics equal scikit-learn's on the same pairs, predictions
captured by a real served model joined with ground truth by inference id (unmatched ones
counted), baselines from a table and from a job, and violations when labels turn bad."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from monitorlib import assert_one_line_error
from servinglib import ThreadServer, build_model, churn_table
from sklearn import metrics as skm

from tabpilot.artifacts import load
from tabpilot.automl import AutoML
from tabpilot.monitor import COMPLETED, CONSTRAINTS, STATISTICS, VIOLATIONS, WITH_VIOLATIONS
from tabpilot.monitor.quality import Pairs, measure
from tabpilot.monitor.quality_metrics import check_constraints, violations
from tabpilot.serving.app import ServerSettings, server_app
from tabpilot.serving.capture import CaptureWriter
from tabpilot.store import Store
from tabpilot.tasks import ProblemType


def _value(section: dict, name: str) -> float:
    return section[name]["value"]


def _binary_pairs(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.choice(["no", "yes"], n, p=[0.6, 0.4])
    predicted = np.where(rng.random(n) < 0.75, truth, rng.choice(["no", "yes"], n))
    score = np.clip((predicted == "yes") * 0.4 + rng.random(n) * 0.6, 0, 1)
    return truth, predicted, score


def _check_binary(b: dict, truth, predicted, score, positive: str = "yes") -> None:
    t, p = truth == positive, predicted == positive
    expected = {
        "recall": skm.recall_score(t, p), "precision": skm.precision_score(t, p),
        "accuracy": skm.accuracy_score(t, p), "true_positive_rate": skm.recall_score(t, p),
        "true_negative_rate": skm.recall_score(~t, ~p),
        "false_positive_rate": 1 - skm.recall_score(~t, ~p),
        "false_negative_rate": 1 - skm.recall_score(t, p),
        "f0_5": skm.fbeta_score(t, p, beta=0.5), "f1": skm.f1_score(t, p),
        "f2": skm.fbeta_score(t, p, beta=2), "auc": skm.roc_auc_score(t, score),
        "recall_best_constant_classifier": 1.0,
        "precision_best_constant_classifier": t.mean(),
        "accuracy_best_constant_classifier": t.mean(),
        "f1_best_constant_classifier": skm.f1_score(t, np.ones_like(t)),
        "f2_best_constant_classifier": skm.fbeta_score(t, np.ones_like(t), beta=2),
    }
    for name, value in expected.items():
        assert _value(b, name) == pytest.approx(value, abs=1e-9), name
    cm = skm.confusion_matrix(t, p)
    negative = next(k for k in b["confusion_matrix"] if k != positive)
    assert b["confusion_matrix"] == {
        negative: {negative: int(cm[0, 0]), positive: int(cm[0, 1])},
        positive: {negative: int(cm[1, 0]), positive: int(cm[1, 1])}}


def test_binary_multiclass_and_regression_metrics_equal_scikit_learns() -> None:
    truth, predicted, score = _binary_pairs(400)
    stats = measure(Pairs(ProblemType.BINARY, list(truth), list(predicted), list(score)))
    assert stats["dataset"]["item_count"] == 400
    b = stats["binary_classification_metrics"]
    _check_binary(b, truth, predicted, score)
    assert 0 < b["recall"]["standard_deviation"] < 0.1  # bootstrap spread, 400 rows
    fpr, tpr, _ = skm.roc_curve(truth == "yes", score)
    assert b["receiver_operating_characteristic_curve"]["true_positive_rates"] == tpr.tolist()

    rng = np.random.default_rng(1)
    t3 = rng.choice(["setosa", "versicolor", "virginica"], 300, p=[0.5, 0.3, 0.2])
    p3 = np.where(rng.random(300) < 0.7, t3, rng.choice(["setosa", "virginica"], 300))
    m = measure(Pairs(ProblemType.MULTICLASS, list(t3), list(p3)))[
        "multiclass_classification_metrics"]
    top = pd.Series(t3).value_counts().idxmax()  # the best constant: the commonest label
    constant = np.full_like(t3, top)
    for name, fn in [("accuracy", skm.accuracy_score),
                     ("weighted_recall", lambda a, b: skm.recall_score(a, b, average="weighted")),
                     ("weighted_precision",
                      lambda a, b: skm.precision_score(a, b, average="weighted", zero_division=0)),
                     ("weighted_f0_5", lambda a, b: skm.fbeta_score(
                         a, b, beta=0.5, average="weighted", zero_division=0)),
                     ("weighted_f1", lambda a, b: skm.f1_score(a, b, average="weighted",
                                                               zero_division=0)),
                     ("weighted_f2", lambda a, b: skm.fbeta_score(
                         a, b, beta=2, average="weighted", zero_division=0))]:
        assert _value(m, name) == pytest.approx(fn(t3, p3), abs=1e-9), name
        assert _value(m, f"{name}_best_constant_classifier") == pytest.approx(
            fn(t3, constant), abs=1e-9), name
    assert m["confusion_matrix"]["virginica"]["setosa"] == int(
        ((t3 == "virginica") & (p3 == "setosa")).sum())

    y = rng.normal(10, 3, 250)
    yhat = y + rng.normal(0, 1, 250)
    r = measure(Pairs(ProblemType.REGRESSION, list(y), list(yhat)))["regression_metrics"]
    assert _value(r, "mae") == pytest.approx(skm.mean_absolute_error(y, yhat), abs=1e-9)
    assert _value(r, "mse") == pytest.approx(skm.mean_squared_error(y, yhat), abs=1e-9)
    assert _value(r, "rmse") == pytest.approx(np.sqrt(skm.mean_squared_error(y, yhat)),
                                              abs=1e-9)
    assert _value(r, "r2") == pytest.approx(skm.r2_score(y, yhat), abs=1e-9)


def test_model_monitors_documented_example_and_its_small_sample_nan() -> None:
    # the binary example of SageMaker's model-quality metrics page: 4 rows, one positive
    b = measure(Pairs(ProblemType.BINARY, [0, 0, 0, 1], [0, 1, 1, 1], None))[
        "binary_classification_metrics"]
    assert b["confusion_matrix"] == {"0": {"0": 1, "1": 2}, "1": {"0": 0, "1": 1}}
    assert (_value(b, "precision"), _value(b, "accuracy")) == (pytest.approx(1 / 3), 0.5)
    assert _value(b, "f0_5_best_constant_classifier") == pytest.approx(0.29411764705882354)
    assert _value(b, "f2_best_constant_classifier") == pytest.approx(0.625)
    assert b["recall"]["standard_deviation"] == "NaN"  # under 200 rows, as Model Monitor
    assert "auc" not in b


def test_constraints_operators_and_flipped_labels() -> None:
    truth, predicted, score = _binary_pairs(300)
    good = measure(Pairs(ProblemType.BINARY, list(truth), list(predicted), list(score)))
    rules = check_constraints({"binary_classification_constraints": {
        "recall": {"threshold": 0.6, "comparison_operator": "LessThanThreshold"},
        "false_positive_rate": {"threshold": 0.3, "comparison_operator": "GreaterThanThreshold"},
    }}, ProblemType.BINARY)
    assert violations(good, rules) == []
    flipped = np.where(truth == "yes", "no", "yes")
    bad = measure(Pairs(ProblemType.BINARY, list(flipped), list(predicted), list(score)))
    found = violations(bad, rules)
    assert {v["metric_name"] for v in found} == {"recall", "false_positive_rate"}
    assert found[0]["constraint_check_type"] == "LessThanThreshold"
    assert "Metric recall with" in found[0]["description"]
    with pytest.raises(Exception, match="comparison_operator 'Below'"):
        check_constraints({"binary_classification_constraints": {
            "recall": {"threshold": 0.6, "comparison_operator": "Below"}}}, ProblemType.BINARY)
    with pytest.raises(Exception, match="no regression_constraints"):
        check_constraints({"binary_classification_constraints": {}}, ProblemType.REGRESSION)


def test_a_served_models_captured_predictions_joined_with_ground_truth(tmp_path: Path,
                                                                       cli) -> None:
    model_dir = build_model(tmp_path / "models" / "m" / "model", n_estimators=10)
    Store.for_workspace(tmp_path).put_endpoint("churn", str(model_dir), capture_percent=100.0)
    table = churn_table(100, seed=5)
    rows = table.drop(columns="label")
    settings = ServerSettings(workspace=tmp_path, poll_seconds=0.2)
    with ThreadServer(server_app(settings)) as server:
        url = f"{server.url}/endpoints/churn/invocations"
        for i in range(60):  # one row per request, JSON answers
            response = httpx.post(url, json={"instances": [rows.iloc[i].to_dict()]},
                                  headers={"Accept": "application/json",
                                           "X-Amzn-SageMaker-Inference-Id": f"r{i}"})
            assert response.status_code == 200, response.text
        body = rows.iloc[60:80].to_csv(index=False, header=False)  # 20 rows, CSV answer
        response = httpx.post(url, content=body, headers={
            "Content-Type": "text/csv", "Accept": "text/csv",
            "X-Amzn-SageMaker-Inference-Id": "batch"})
        assert response.status_code == 200, response.text
    ids = [f"r{i}" for i in range(60)] + [f"batch:{i}" for i in range(20)]
    labels = pd.DataFrame({"id": ids, "label": table["label"].iloc[:80].to_numpy()})
    # 50 singles and 10 batch rows labelled; 3 labels of predictions never captured
    given = pd.concat([labels.iloc[:50], labels.iloc[60:70],
                       pd.DataFrame({"id": ["ghost1", "ghost2", "ghost3"],
                                     "label": ["yes", "no", "yes"]})])
    given.to_csv(tmp_path / "labels.csv", index=False)
    written = cli("monitor", "ground-truth", "churn", str(tmp_path / "labels.csv"),
                  "--id-column", "id", "--label-column", "label", workspace=tmp_path)
    assert written.returncode == 0, written.stderr

    done = cli("monitor", "quality", "churn", "--problem-type", "BinaryClassification",
               "--json", "-o", str(tmp_path / "q1"), workspace=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    window = result["Window"]
    assert (window["Requests"], window["Predictions"], window["Labelled"]) == (61, 80, 60)
    assert (window["UnmatchedPredictions"], window["UnmatchedGroundTruth"]) == (20, 3)
    assert result["ExecutionStatus"] == COMPLETED and result["Violations"] == []
    # the same pairs, measured by scikit-learn: the model's own predictions on those rows
    model = load(model_dir)
    kept = np.r_[0:50, 60:70]
    proba = model.predictor.predict_proba(rows.iloc[kept]).to_numpy()[:, 1]
    predicted = np.where(model.predictor.labels_from_index(
        model.predictor.predict_proba(rows.iloc[kept]).to_numpy()) == 1, "yes", "no")
    truth = table["label"].to_numpy()[kept]
    written_stats = json.loads((tmp_path / "q1" / STATISTICS).read_text())
    _check_binary(written_stats["binary_classification_metrics"], truth, predicted, proba)
    assert json.loads((tmp_path / "q1" / VIOLATIONS).read_text()) == {"violations": []}
    # ProbabilityAttribute naming tabpilot's own `probability` key reads it as served
    named = cli("monitor", "quality", "churn", "--problem-type", "BinaryClassification",
                "--probability-attribute", "probability", "-o", str(tmp_path / "q2"),
                workspace=tmp_path)
    assert named.returncode == 0, named.stderr
    again = json.loads((tmp_path / "q2" / STATISTICS).read_text())
    assert again["binary_classification_metrics"]["auc"]["value"] == pytest.approx(
        skm.roc_auc_score(truth == "yes", proba), abs=1e-9)

    # a baseline from the same labelled predictions, then labels that turn bad
    pd.DataFrame({"y": truth, "pred": predicted, "p": proba}).to_csv(tmp_path / "pairs.csv",
                                                                   index=False)
    made = cli("monitor", "quality-baseline", str(tmp_path / "pairs.csv"), "--label-column",
               "y", "--prediction-column", "pred", "--probability-column", "p",
               "--problem-type", "binary", "-o", str(tmp_path / "qb"), "--json",
               workspace=tmp_path)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["Constraints"]["recall"]["comparison_operator"] == \
        "LessThanThreshold"
    calm = cli("monitor", "quality", "churn", "--baseline", str(tmp_path / "qb"), "--json",
               workspace=tmp_path)
    assert json.loads(calm.stdout)["ExecutionStatus"] == COMPLETED, calm.stdout
    flipped = given.assign(label=given["label"].map({"yes": "no", "no": "yes"}))
    flipped.to_csv(tmp_path / "relabelled.csv", index=False)  # later files win
    assert cli("monitor", "ground-truth", "churn", str(tmp_path / "relabelled.csv"),
               "--id-column", "id", "--label-column", "label",
               workspace=tmp_path).returncode == 0
    bad = cli("monitor", "quality", "churn", "--baseline", str(tmp_path / "qb" / CONSTRAINTS),
              "--json", workspace=tmp_path)
    result = json.loads(bad.stdout)
    assert result["ExecutionStatus"] == WITH_VIOLATIONS
    assert {"accuracy", "recall", "auc"} <= {v["metric_name"] for v in result["Violations"]}
    written = json.loads((Path(result["Output"]) / VIOLATIONS).read_text())["violations"]
    assert written == result["Violations"]


def _capture(workspace: Path, answers: list[tuple[str, bytes, str]]) -> None:
    writer = CaptureWriter(workspace / "capture", "ep", 100.0)
    for inference_id, body, accept in answers:
        writer.write(b"1,2\n", "text/csv", body, accept, inference_id=inference_id)


def _labels(workspace: Path, cli, pairs: dict[str, object]) -> None:
    pd.DataFrame({"id": list(pairs), "y": [str(v) for v in pairs.values()]}).to_csv(
        workspace / "gt.csv", index=False)
    done = cli("monitor", "ground-truth", "ep", str(workspace / "gt.csv"), "--id-column",
               "id", "--label-column", "y", workspace=workspace)
    assert done.returncode == 0, done.stderr


def test_json_lines_multiclass_csv_regression_and_a_probability_threshold(tmp_path: Path,
                                                                          cli) -> None:
    rng = np.random.default_rng(2)
    n = 220
    t3 = rng.choice(["a", "b", "c"], n)
    p3 = np.where(rng.random(n) < 0.6, t3, "c")
    ws = tmp_path / "multi"
    _capture(ws, [(f"m{i}", (json.dumps({"predicted_label": p3[i], "probability": 0.9})
                             + "\n").encode(), "application/jsonlines") for i in range(n)])
    _labels(ws, cli, {f"m{i}": t3[i] for i in range(n)})
    done = cli("monitor", "quality", "ep", "--problem-type", "multiclass", "--json",
               workspace=ws)
    m = json.loads(done.stdout)["Metrics"]
    assert m["accuracy"]["value"] == pytest.approx(skm.accuracy_score(t3, p3), abs=1e-9)
    assert m["weighted_f1"]["value"] == pytest.approx(
        skm.f1_score(t3, p3, average="weighted"), abs=1e-9)
    assert isinstance(m["accuracy"]["standard_deviation"], float)  # 220 rows: a spread

    y = rng.normal(50, 10, 30)
    yhat = y + rng.normal(0, 2, 30)
    ws = tmp_path / "reg"
    _capture(ws, [(f"q{i}", f"{float(yhat[i])!r}\n".encode(), "text/csv") for i in range(30)])
    _labels(ws, cli, {f"q{i}": repr(float(y[i])) for i in range(30)})
    r = json.loads(cli("monitor", "quality", "ep", "--problem-type", "Regression", "--json",
                       workspace=ws).stdout)["Metrics"]
    assert r["rmse"]["value"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, yhat)),
                                               abs=1e-9)
    assert r["r2"]["value"] == pytest.approx(skm.r2_score(y, yhat), abs=1e-9)

    # a response that is only P(positive) in CSV column 0: labels from the threshold
    truth = rng.integers(0, 2, 40)
    p = np.clip(truth * 0.3 + rng.random(40) * 0.7, 0, 1)
    ws = tmp_path / "proba"
    _capture(ws, [(f"s{i}", f"{float(p[i])!r}\n".encode(), "text/csv") for i in range(40)])
    _labels(ws, cli, {f"s{i}": int(truth[i]) for i in range(40)})
    b = json.loads(cli("monitor", "quality", "ep", "--problem-type", "binary",
                       "--probability-attribute", "0", "--probability-threshold", "0.6",
                       "--json", workspace=ws).stdout)["Metrics"]
    assert b["accuracy"]["value"] == pytest.approx(skm.accuracy_score(truth, p >= 0.6))
    assert b["auc"]["value"] == pytest.approx(skm.roc_auc_score(truth, p), abs=1e-9)
    wrong = cli("monitor", "quality", "ep", "--problem-type", "binary",
                "--inference-attribute", "predicted_label", workspace=ws)
    assert_one_line_error(wrong, "--inference-attribute 'predicted_label'", "hold '0'")
    assert_one_line_error(cli("monitor", "quality", "ep", workspace=ws), "--problem-type")
    assert_one_line_error(cli("monitor", "quality", "ep", "--baseline",
                              str(tmp_path / "none"), workspace=ws), "no model-quality")


def test_a_jobs_quality_baseline_is_its_best_candidates_held_out_predictions(
        tmp_path: Path, cli) -> None:
    frame = churn_table(300)
    AutoML("label", time_limit=30, max_candidates=1, algorithms=["linear"],
           workspace=tmp_path, name="churn", verbosity=0).fit(frame)
    done = cli("monitor", "quality-baseline", "churn", "--json", workspace=tmp_path)
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    folder = Path(made["Baseline"])
    assert folder == tmp_path / "jobs" / "churn" / "monitoring" / "model-quality"
    assert made["ProblemType"] == "BinaryClassification"
    stats = json.loads((folder / STATISTICS).read_text())
    job_dir = folder.parents[1]
    y = np.load(job_dir / "validation_target.npy")
    best = Store.for_workspace(tmp_path).get_job("churn").best_candidate
    proba = np.load(job_dir / "candidates" / best / "validation_predictions.npy")
    b = stats["binary_classification_metrics"]
    assert stats["dataset"]["item_count"] == len(y)
    assert b["auc"]["value"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]), abs=1e-6)
    constraints = json.loads((folder / CONSTRAINTS).read_text())
    assert set(constraints["binary_classification_constraints"]) >= {"accuracy", "f1", "auc"}
