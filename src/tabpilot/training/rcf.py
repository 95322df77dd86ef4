"""An anomaly detector in Random Cut Forest's role: scikit-learn's IsolationForest, a
different algorithm of the same family (random axis-aligned cuts on small samples; short
isolation paths mean anomalies). It is not Amazon's RCF: the scores are Isolation Forest's
anomaly scores 2^(-E[h(x)] / c(n)) in (0, 1], higher is more anomalous, where RCF's are
unbounded displacement scores. Inference records `{"score": ...}` under `scores`, as
RCF's JSON response has them.

Mapped: num_trees, num_samples_per_tree, feature_dim. With a labelled test channel
(`text/csv;label_size=1`) the job reports `test:precision`, `test:recall` and `test:f1`,
flagging as anomalous the scores more than 3 standard deviations above the training
mean, RCF's usual cut-off. The trees are stored as plain arrays and walked with numpy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tabpilot.training import arrays
from tabpilot.training.base import Control, Predictor
from tabpilot.training.channels import Channel
from tabpilot.training.hyperparameters import Param

NAME = "randomcutforest"
LABELLED = False
CHANNELS = ("train", "test")
MODEL_FILE = "isolation-forest.npz"
HYPERPARAMETERS: dict[str, Param] = {
    "feature_dim": Param("auto-int", "auto", 1),
    "num_trees": Param("int", 100, 50, 1000),
    "num_samples_per_tree": Param("int", 256, 1, 2048),
    "eval_metrics": Param("str"),
    "seed": Param("int", 0),
}


def _average_path(n: np.ndarray) -> np.ndarray:
    """c(n): the average path length of an unsuccessful search in a binary search tree."""
    n = np.asarray(n, dtype=float)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


def fit(hp: dict[str, Any], channels: dict[str, Channel], model_dir: Path,
        control: Control) -> dict[str, float]:
    from sklearn.ensemble import IsolationForest

    X = channels["train"].dense(NAME)
    forest = IsolationForest(n_estimators=hp["num_trees"],
                             max_samples=min(hp["num_samples_per_tree"], len(X)),
                             random_state=hp["seed"]).fit(X)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("feature", "threshold", "left",
                                                          "right", "leaf_value")}
    offsets = [0]
    for tree in forest.estimators_:
        t = tree.tree_
        depth = np.zeros(t.node_count)
        for node in range(t.node_count):  # children come after their parent
            for child in (t.children_left[node], t.children_right[node]):
                if child >= 0:
                    depth[child] = depth[node] + 1
        parts["feature"].append(t.feature)
        parts["threshold"].append(t.threshold)
        parts["left"].append(t.children_left)
        parts["right"].append(t.children_right)
        parts["leaf_value"].append(depth + _average_path(t.n_node_samples))
        offsets.append(offsets[-1] + t.node_count)
    joined = {k: np.concatenate(v) for k, v in parts.items()}
    predictor = ForestPredictor(**joined, offsets=np.asarray(offsets),
                                max_samples=int(forest.max_samples_), features=X.shape[1])
    train_scores = predictor.scores(X)
    cutoff = float(train_scores.mean() + 3 * train_scores.std())
    arrays.save(model_dir / MODEL_FILE, **joined, offsets=offsets,
                max_samples=forest.max_samples_, features=X.shape[1], cutoff=cutoff)
    metrics: dict[str, float] = {"train:mean_score": float(train_scores.mean())}
    test = channels.get("test")
    if test is not None and test.y is not None:
        from sklearn import metrics as m

        flagged = predictor.scores(test.dense(NAME)) > cutoff
        truth = test.y > 0
        metrics.update({
            "test:precision": float(m.precision_score(truth, flagged, zero_division=0)),
            "test:recall": float(m.recall_score(truth, flagged, zero_division=0)),
            "test:f1": float(m.f1_score(truth, flagged, zero_division=0))})
    control.record(0, metrics)
    return metrics


class ForestPredictor(Predictor):
    json_key = "scores"

    def __init__(self, feature: np.ndarray, threshold: np.ndarray, left: np.ndarray,
                 right: np.ndarray, leaf_value: np.ndarray, offsets: np.ndarray,
                 max_samples: int, features: int) -> None:
        self.feature, self.threshold, self.left, self.right = feature, threshold, left, right
        self.leaf_value, self.offsets = leaf_value, offsets
        self.max_samples, self.features = max_samples, features

    def scores(self, X: np.ndarray) -> np.ndarray:
        """Isolation Forest's anomaly score, as scikit-learn's -score_samples gives it."""
        X = np.asarray(X, dtype=np.float32).astype(np.float64)  # trees compare float32 values
        rows = np.arange(len(X))
        total = np.zeros(len(X))
        for start in self.offsets[:-1]:
            node = np.zeros(len(X), dtype=np.int64)
            while True:
                at = start + node
                inner = self.left[at] >= 0
                if not inner.any():
                    break
                go_left = X[rows, np.where(inner, self.feature[at], 0)] <= self.threshold[at]
                node = np.where(inner, np.where(go_left, self.left[at], self.right[at]), node)
            total += self.leaf_value[start + node]
        trees = len(self.offsets) - 1
        return 2.0 ** (-total / (trees * _average_path(np.array([self.max_samples]))[0]))

    def records(self, X: np.ndarray) -> list[dict[str, object]]:
        return [{"score": float(s)} for s in self.scores(X)]


def load(model_dir: Path) -> ForestPredictor:
    a = arrays.load(model_dir, MODEL_FILE, ("feature", "threshold", "left", "right",
                                            "leaf_value", "offsets", "max_samples", "features"))
    return ForestPredictor(a["feature"], a["threshold"], a["left"], a["right"],
                           a["leaf_value"], a["offsets"], int(a["max_samples"]),
                           int(a["features"]))
