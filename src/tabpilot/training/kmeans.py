"""SageMaker's K-Means, in scikit-learn's KMeans: `k` centres, the built-in's metrics
(`train:msd`, `train:ssd`, and `test:msd`/`test:ssd` with a test channel) and inference
records (`closest_cluster`, `distance_to_cluster`). The model file holds the centres only.

Mapped: k, init_method (random, kmeans++), local_lloyd_max_iter, local_lloyd_tol,
local_lloyd_num_trials (n_init), epochs and mini_batch_size are accepted (one full-batch
Lloyd run replaces SageMaker's streaming mini-batch pass); extra_center_factor,
half_life_time_size and local_lloyd_init_method do not apply to a full-batch fit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tabpilot.errors import DataError
from tabpilot.training import arrays
from tabpilot.training.base import Control, Predictor
from tabpilot.training.channels import Channel
from tabpilot.training.hyperparameters import Param

NAME = "kmeans"
LABELLED = False
CHANNELS = ("train", "test")
MODEL_FILE = "kmeans.npz"
HYPERPARAMETERS: dict[str, Param] = {
    "k": Param("int", low=2, required=True),
    "feature_dim": Param("auto-int", "auto", 1),
    "init_method": Param("choice", "random", choices=("random", "kmeans++")),
    "local_lloyd_max_iter": Param("int", 300, 1),
    "local_lloyd_tol": Param("float", 0.0001, 0, 1),
    "local_lloyd_num_trials": Param("auto-int", "auto", 1),
    "local_lloyd_init_method": Param("choice", "kmeans++", choices=("random", "kmeans++")),
    "epochs": Param("int", 1, 1), "mini_batch_size": Param("int", 5000, 1),
    "extra_center_factor": Param("auto-int", "auto", 1),
    "half_life_time_size": Param("int", 0, 0),
    "eval_metrics": Param("str", '["msd"]'),
    "seed": Param("int", 0),
}


def fit(hp: dict[str, Any], channels: dict[str, Channel], model_dir: Path,
        control: Control) -> dict[str, float]:
    from sklearn.cluster import KMeans

    X = channels["train"].dense(NAME)
    if X.shape[0] < hp["k"]:
        raise DataError(f"channel train has {X.shape[0]} rows, fewer than k={hp['k']} clusters")
    trials = hp["local_lloyd_num_trials"]
    model = KMeans(hp["k"], init="k-means++" if hp["init_method"] == "kmeans++" else "random",
                   n_init=1 if trials == "auto" else trials, max_iter=hp["local_lloyd_max_iter"],
                   tol=hp["local_lloyd_tol"], random_state=hp["seed"]).fit(X)
    centres = model.cluster_centers_
    arrays.save(model_dir / MODEL_FILE, centres=centres)
    predictor = KMeansPredictor(centres)
    metrics: dict[str, float] = {}
    for name in CHANNELS:
        if name in channels:
            _, distance = predictor.assign(channels[name].dense(NAME))
            metrics[f"{name}:msd"] = float(np.mean(distance ** 2))
            metrics[f"{name}:ssd"] = float(np.sum(distance ** 2))
    control.record(0, metrics)
    return metrics


class KMeansPredictor(Predictor):
    def __init__(self, centres: np.ndarray) -> None:
        self.centres = centres
        self.features = centres.shape[1]

    def assign(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        squared = ((X[:, None, :] - self.centres[None, :, :]) ** 2).sum(axis=2)
        closest = squared.argmin(axis=1)
        return closest, np.sqrt(squared[np.arange(len(X)), closest])

    def records(self, X: np.ndarray) -> list[dict[str, object]]:
        closest, distance = self.assign(X)
        return [{"closest_cluster": float(c), "distance_to_cluster": float(d)}
                for c, d in zip(closest, distance, strict=True)]


def load(model_dir: Path) -> KMeansPredictor:
    return KMeansPredictor(arrays.load(model_dir, MODEL_FILE, ("centres",))["centres"])
