"""Each built-in algorithm trained in-process through `training.job.run` on tiny generated
tables, its model.tar.gz unpacked and served through `training.inference`."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from traininglib import binary_table, write_csv

from tabpilot.errors import ConfigError, DataError, TabpilotError
from tabpilot.training import images, inference
from tabpilot.training.base import Control
from tabpilot.training.job import ChannelInput, run, unpack


def train(tmp: Path, algorithm: str, hp: dict[str, str], channels: dict[str, np.ndarray],
          content_type: str = "text/csv"):
    inputs = {}
    for name, rows in channels.items():
        path = tmp / "data" / name / "part.csv"
        write_csv(path, rows)
        inputs[name] = ChannelInput([path], content_type)
    result = run(tmp / "job", algorithm, hp, inputs, Control())
    model = inference.load(unpack(result.archive, tmp / "served"), algorithm)
    return result, model


def csv_body(X: np.ndarray) -> bytes:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in X).encode()


def blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, n)
    centres = np.array([[0, 0], [6, 6], [-6, 6]])
    return centres[label] + rng.normal(scale=0.7, size=(n, 2)), label.astype(float)


def test_linear_learner_binary(tmp_path: Path) -> None:
    result, model = train(tmp_path, "linear-learner", {
        "predictor_type": "binary_classifier", "epochs": "10", "l1": "0.001", "wd": "auto"},
        {"train": binary_table(300, 0), "validation": binary_table(120, 1)})
    assert result.metrics["validation:binary_classification_accuracy"] > 0.8
    assert result.metrics["validation:roc_auc_score"] > 0.85
    X = binary_table(5, 2)[:, 1:]
    payload, kind = model.answer(csv_body(X), "text/csv", "application/json")
    records = json.loads(payload)["predictions"]
    assert kind == "application/json" and len(records) == 5
    assert all(r["predicted_label"] == float(r["score"] > 0.5) for r in records)
    csv_out, _ = model.answer(csv_body(X), "text/csv", "text/csv")
    assert np.loadtxt(io.StringIO(csv_out.decode()), delimiter=",").shape == (5, 2)


def test_linear_learner_regressor_and_multiclass(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = X @ np.array([2.0, -1.0, 0.5]) + 10 + rng.normal(scale=0.1, size=300)
    result, model = train(tmp_path / "reg", "linear-learner", {
        "predictor_type": "regressor", "epochs": "20"},
        {"train": np.column_stack([y[:200], X[:200]]),
         "validation": np.column_stack([y[200:], X[200:]])})
    assert result.metrics["validation:rmse"] < 0.5
    points, labels = blobs(300, 0)
    result, model = train(tmp_path / "multi", "linear-learner", {
        "predictor_type": "multiclass_classifier", "num_classes": "3"},
        {"train": np.column_stack([labels, points])})
    assert result.metrics["train:multiclass_accuracy"] > 0.95
    payload, _ = model.answer(csv_body(points[:4]), "text/csv", "application/json")
    records = json.loads(payload)["predictions"]
    assert [r["predicted_label"] for r in records] == labels[:4].tolist()
    assert all(abs(sum(r["score"]) - 1) < 1e-9 for r in records)


def test_kmeans_finds_the_blobs(tmp_path: Path) -> None:
    points, labels = blobs(300, 0)
    result, model = train(tmp_path, "kmeans", {"k": "3", "init_method": "kmeans++"},
                          {"train": points, "test": blobs(60, 1)[0]})
    assert result.metrics["test:msd"] < 2.0
    payload, _ = model.answer(csv_body(points[:30]), "text/csv", "application/json")
    clusters = [r["closest_cluster"] for r in json.loads(payload)["predictions"]]
    pairs = set(zip(clusters, labels[:30].tolist(), strict=True))
    assert len(pairs) == len(set(labels[:30]))  # one cluster per blob


def test_knn_classifies_by_its_neighbours(tmp_path: Path) -> None:
    points, labels = blobs(300, 0)
    test_points, test_labels = blobs(60, 1)
    result, model = train(tmp_path, "knn", {
        "k": "5", "predictor_type": "classifier", "sample_size": "200", "feature_dim": "2"},
        {"train": np.column_stack([labels, points]),
         "test": np.column_stack([test_labels, test_points])})
    assert result.metrics["test:accuracy"] > 0.95
    payload, _ = model.answer(json.dumps({"instances": [{"features": list(p)}
                                                        for p in test_points[:5]]}).encode(),
                              "application/json", "application/json")
    predicted = [r["predicted_label"] for r in json.loads(payload)["predictions"]]
    assert predicted == test_labels[:5].tolist()


def test_rcf_role_scores_outliers_higher_as_isolation_forest_does(tmp_path: Path) -> None:
    from sklearn.ensemble import IsolationForest

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    result, model = train(tmp_path, "randomcutforest", {
        "num_trees": "50", "num_samples_per_tree": "128"}, {"train": X},
        "text/csv;label_size=0")
    probe = np.vstack([X[:20], rng.normal(size=(5, 3)) + 8])
    payload, _ = model.answer(csv_body(probe), "text/csv", "application/json")
    scores = np.array([r["score"] for r in json.loads(payload)["scores"]])
    assert scores[20:].min() > scores[:20].max()
    forest = IsolationForest(n_estimators=50, max_samples=128, random_state=0).fit(X)
    np.testing.assert_allclose(scores, -forest.score_samples(probe), rtol=1e-12)


def test_xgboost_libsvm_parquet_weights_and_multiclass(tmp_path: Path) -> None:
    from sklearn.datasets import dump_svmlight_file

    data = binary_table(200, 0)
    svm = tmp_path / "svm" / "train.libsvm"
    svm.parent.mkdir()
    dump_svmlight_file(data[:, 1:], data[:, 0], str(svm), zero_based=True)
    parquet = tmp_path / "pq" / "validation.parquet"
    parquet.parent.mkdir()
    pd.DataFrame(binary_table(80, 1), columns=list("yabcd")).to_parquet(parquet)
    result = run(tmp_path / "job1", "xgboost", {
        "num_round": "40", "objective": "binary:logistic", "eval_metric": "error,auc,f1",
        "early_stopping_rounds": "3", "nthread": "1"},
        {"train": ChannelInput([svm], "text/libsvm"),
         "validation": ChannelInput([parquet], "application/x-parquet")}, Control())
    assert {"validation:error", "validation:auc", "validation:f1"} <= set(result.metrics)
    assert len(result.curves["validation:auc"]) < 40  # early stopping ended it
    points, labels = blobs(150, 0)
    weighted = np.column_stack([labels, np.ones(150), points])  # label, weight, features
    result, model = train(tmp_path / "multi", "xgboost", {
        "num_round": "5", "objective": "multi:softprob", "num_class": "3",
        "csv_weights": "1", "nthread": "1"}, {"train": weighted})
    assert "train:mlogloss" in result.metrics
    out, _ = model.answer(csv_body(points[:3]), "text/csv", "text/csv")
    probabilities = np.loadtxt(io.StringIO(out.decode()), delimiter=",")
    assert probabilities.shape == (3, 3)
    assert probabilities.argmax(axis=1).tolist() == labels[:3].astype(int).tolist()


def test_stop_keeps_the_model_so_far(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    write_csv(path, binary_table(100, 0))
    asked = iter([False, False, True])
    result = run(tmp_path / "job", "xgboost", {"num_round": "1000"},
                 {"train": ChannelInput([path])},
                 Control(stop_requested=lambda: next(asked, True)))
    assert result.stopped_by == "stop"
    assert len(result.curves["train:rmse"]) == 3
    assert result.archive.is_file()


@pytest.mark.parametrize(("algorithm", "hp", "message"), [
    ("linear-learner", {"predictor_type": "tree"}, "must be one of binary_classifier"),
    ("linear-learner", {}, "needs the hyperparameter 'predictor_type'"),
    ("kmeans", {"k": "1"}, "The 'k' hyperparameter of kmeans must be an int in the range "
     "[2, inf]. Got '1' instead."),
    ("knn", {"k": "3", "predictor_type": "classifier", "sample_size": "0"}, "sample_size"),
    ("randomcutforest", {"num_trees": "10"}, "[50, 1000]"),
    ("xgboost", {"num_round": "3", "eval_metric": "accuracy_score"}, "no metric XGBoost"),
    ("xgboost", {"num_round": "2.5"}, "must be an int"),
])
def test_bad_hyperparameters(tmp_path: Path, algorithm: str, hp: dict, message: str) -> None:
    path = tmp_path / "train.csv"
    write_csv(path, binary_table(30, 0))
    with pytest.raises(ConfigError, match=None) as caught:
        run(tmp_path / "job", algorithm, hp, {"train": ChannelInput([path])}, Control())
    assert message in str(caught.value)
    assert not (tmp_path / "job" / "output").exists()  # refused before anything was written


def test_bad_channels(tmp_path: Path) -> None:
    header = tmp_path / "header.csv"
    header.write_text("label,a,b\n1,2,3\n")
    with pytest.raises(DataError, match="column 1 holds 'label', not a number"):
        run(tmp_path / "j1", "xgboost", {"num_round": "2"},
            {"train": ChannelInput([header])}, Control())
    gaps = tmp_path / "gaps.csv"
    gaps.write_text("1,2\n0,\n")
    with pytest.raises(DataError, match="takes no missing values"):
        run(tmp_path / "j2", "kmeans", {"k": "2"}, {"train": ChannelInput([gaps])}, Control())


def test_images_of_any_region_and_others() -> None:
    for uri in ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
                "451049120500.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-xgboost:1.5-1",
                "sagemaker-xgboost:1.7-1"):
        assert images.parse(uri).algorithm == "xgboost"
    assert images.parse("382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1") \
        .algorithm == "linear-learner"
    assert images.parse("664544806723.dkr.ecr.eu-central-1.amazonaws.com/kmeans:1").tag == "1"
    assert images.parse("174872318107.dkr.ecr.us-west-2.amazonaws.com/randomcutforest:1") \
        .algorithm == "randomcutforest"
    assert images.parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/my-algo:1") is None
    assert images.parse("tabpilot-inference:1.0") is None


def test_unpack_refuses_paths_out_of_the_folder(tmp_path: Path) -> None:
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(TabpilotError, match="not a readable model.tar.gz"):
        unpack(archive, tmp_path / "into" / "model")
    assert not (tmp_path / "into" / "escaped").exists()
