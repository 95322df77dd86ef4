"""SageMaker's k-NN, in exact neighbour search (scikit-learn's NearestNeighbors, built at
load time from the stored sample, so the model file stays plain arrays): `sample_size`
training rows kept, the k nearest vote (classifier; ties to the smaller label) or average
(regressor); `test:accuracy` / `test:mse` with a test channel; records `predicted_label`.

Mapped: k, predictor_type, sample_size, index_metric (L2, COSINE; INNER_PRODUCT is ranked
by the largest inner product), dimension_reduction_type sign/fjlt with
dimension_reduction_target (both a Gaussian random projection here). index_type
(faiss.Flat/IVFFlat/IVFPQ) and its faiss_* settings are accepted; search is always exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tabpilot.errors import ConfigError
from tabpilot.training import arrays
from tabpilot.training.base import Control, Predictor
from tabpilot.training.channels import Channel
from tabpilot.training.hyperparameters import Param

NAME = "knn"
LABELLED = True
CHANNELS = ("train", "test")
MODEL_FILE = "knn.npz"
HYPERPARAMETERS: dict[str, Param] = {
    "k": Param("int", low=1, high=1024, required=True),
    "predictor_type": Param("choice", choices=("classifier", "regressor"), required=True),
    "sample_size": Param("int", low=1, required=True),
    "feature_dim": Param("auto-int", "auto", 1),
    "dimension_reduction_type": Param("choice", None, choices=("sign", "fjlt")),
    "dimension_reduction_target": Param("int", None, 1),
    "index_type": Param("choice", "faiss.Flat", choices=("faiss.Flat", "faiss.IVFFlat",
                                                         "faiss.IVFPQ")),
    "index_metric": Param("choice", "L2", choices=("L2", "INNER_PRODUCT", "COSINE")),
    "faiss_index_ivf_nlists": Param("auto-int", "auto", 1),
    "faiss_index_pq_m": Param("int", None, 1),
    "mini_batch_size": Param("int", 5000, 1), "seed": Param("int", 0),
}


def fit(hp: dict[str, Any], channels: dict[str, Channel], model_dir: Path,
        control: Control) -> dict[str, float]:
    train = channels["train"]
    X, y = train.dense(NAME), train.y
    rng = np.random.default_rng(hp["seed"])
    if hp["sample_size"] < len(X):
        keep = np.sort(rng.choice(len(X), hp["sample_size"], replace=False))
        X, y = X[keep], y[keep]
    if hp["k"] > len(X):
        raise ConfigError(f"k={hp['k']} is more than the {len(X)} rows kept (sample_size)")
    projection = np.eye(X.shape[1])
    if hp["dimension_reduction_type"]:
        target = hp["dimension_reduction_target"]
        if not target:
            raise ConfigError("dimension_reduction_type needs 'dimension_reduction_target'")
        projection = rng.normal(size=(X.shape[1], target)) / np.sqrt(target)
    arrays.save(model_dir / MODEL_FILE, points=X @ projection, labels=y, projection=projection,
                k=hp["k"], predictor_type=hp["predictor_type"], metric=hp["index_metric"])
    metrics: dict[str, float] = {}
    if "test" in channels:
        predictor = load(model_dir)
        test = channels["test"]
        predicted = predictor.predict(test.dense(NAME))
        if hp["predictor_type"] == "classifier":
            metrics["test:accuracy"] = float(np.mean(predicted == test.y))
        else:
            metrics["test:mse"] = float(np.mean((predicted - test.y) ** 2))
    control.record(0, metrics)
    return metrics


class KNNPredictor(Predictor):
    def __init__(self, points: np.ndarray, labels: np.ndarray, projection: np.ndarray, k: int,
                 kind: str, metric: str) -> None:
        from sklearn.neighbors import NearestNeighbors

        self.labels, self.projection, self.k, self.kind = labels, projection, k, kind
        self.features = projection.shape[0]
        self.metric = metric
        self.points = points
        if metric != "INNER_PRODUCT":
            self.index = NearestNeighbors(
                n_neighbors=k, metric="cosine" if metric == "COSINE" else "euclidean",
                algorithm="brute" if metric == "COSINE" else "auto").fit(points)

    def neighbours(self, X: np.ndarray) -> np.ndarray:
        Z = X @ self.projection
        if self.metric == "INNER_PRODUCT":
            return np.argsort(-(Z @ self.points.T), axis=1, kind="stable")[:, :self.k]
        return self.index.kneighbors(Z, return_distance=False)

    def predict(self, X: np.ndarray) -> np.ndarray:
        votes = self.labels[self.neighbours(X)]
        if self.kind == "regressor":
            return votes.mean(axis=1)
        out = np.empty(len(votes))
        for i, row in enumerate(votes):
            values, counts = np.unique(row, return_counts=True)
            out[i] = values[counts.argmax()]  # np.unique sorts: a tie goes to the smaller
        return out

    def records(self, X: np.ndarray) -> list[dict[str, object]]:
        return [{"predicted_label": float(v)} for v in self.predict(X)]


def load(model_dir: Path) -> KNNPredictor:
    a = arrays.load(model_dir, MODEL_FILE, ("points", "labels", "projection", "k",
                                            "predictor_type", "metric"))
    return KNNPredictor(a["points"], a["labels"], a["projection"], int(a["k"]),
                        str(a["predictor_type"]), str(a["metric"]))
