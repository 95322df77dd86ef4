"""SageMaker's Linear Learner, in scikit-learn's SGD linear models: the built-in's
hyperparameter names where they map, its metric names, and a model file of plain arrays
(coefficients, intercepts, the normalisation), scored with numpy.

Mapped: predictor_type, num_classes, epochs (passes over the data), learning_rate (auto:
scikit-learn's `optimal` schedule; a number: constant), l1 and wd (elastic-net penalty:
alpha = l1 + wd, l1_ratio = l1 / alpha), loss, normalize_data, normalize_label,
positive_example_weight_mult (class weight; `balanced`), early_stopping_patience and
early_stopping_tolerance, use_bias, mini_batch_size and optimizer are accepted (scikit-learn
runs plain SGD on one row at a time). Not mapped: several models in parallel
(num_models), binary_classifier_model_selection_criteria other than accuracy at 0.5,
quantile_loss; see docs/training.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tabpilot.errors import ConfigError, DataError
from tabpilot.training import arrays
from tabpilot.training.base import Control, Predictor
from tabpilot.training.channels import Channel
from tabpilot.training.hyperparameters import Param

NAME = "linear-learner"
LABELLED = True
CHANNELS = ("train", "validation", "test")
MODEL_FILE = "linear-learner.npz"
LOSSES = {"auto": None, "logistic": "log_loss", "softmax_loss": "log_loss",
          "hinge_loss": "hinge", "squared_loss": "squared_error",
          "absolute_loss": "epsilon_insensitive", "huber_loss": "huber",
          "eps_insensitive_squared_loss": "squared_epsilon_insensitive",
          "eps_insensitive_absolute_loss": "epsilon_insensitive", "quantile_loss": None}
AUTO_FLOAT = Param("str", "auto")
HYPERPARAMETERS: dict[str, Param] = {
    "predictor_type": Param("choice", choices=("binary_classifier", "multiclass_classifier",
                                               "regressor"), required=True),
    "num_classes": Param("int", None, 3, 1_000_000),
    "feature_dim": Param("auto-int", "auto", 1),
    "epochs": Param("int", 15, 1),
    "learning_rate": AUTO_FLOAT, "l1": AUTO_FLOAT, "wd": AUTO_FLOAT,
    "loss": Param("choice", "auto", choices=tuple(LOSSES)),
    "mini_batch_size": Param("int", 1000, 1),
    "normalize_data": Param("bool", True), "normalize_label": Param("bool", None),
    "positive_example_weight_mult": Param("str", "1.0"),
    "early_stopping_patience": Param("int", 3, 1),
    "early_stopping_tolerance": Param("float", 0.001, 0, low_open=True),
    "use_bias": Param("bool", True),
    "optimizer": Param("choice", "auto", choices=("auto", "sgd", "adam", "rmsprop")),
    "binary_classifier_model_selection_criteria": Param(
        "choice", "accuracy", choices=("accuracy", "f_beta", "precision_at_target_recall",
                                       "recall_at_target_precision", "loss_function")),
    "num_models": Param("auto-int", "auto", 1), "seed": Param("int", 0),
    "huber_delta": Param("float", 1.0, 0), "loss_insensitivity": Param("float", 0.01, 0),
    "margin": Param("float", 1.0, 0), "quantile": Param("float", 0.5, 0, 1, low_open=True),
    "f_beta": Param("float", 1.0, 0, low_open=True),
    "target_recall": Param("float", 0.8, 0, 1), "target_precision": Param("float", 0.8, 0, 1),
    "balance_multiclass_weights": Param("bool", False),
    "num_calibration_samples": Param("int", 10_000_000, 1),
    "accuracy_top_k": Param("int", 3, 1),
    **{k: Param("str") for k in (
        "init_method", "init_scale", "init_sigma", "init_bias", "beta_1", "beta_2",
        "bias_lr_mult", "bias_wd_mult", "use_lr_scheduler", "lr_scheduler_step",
        "lr_scheduler_factor", "lr_scheduler_minimum_lr", "momentum", "unbias_data",
        "unbias_label", "num_point_for_scaler")},
}


def _number(hp: dict[str, Any], name: str, default: float) -> float:
    value = hp[name]
    if value in (None, "auto"):
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number < 0:
        raise ConfigError(f"The {name!r} hyperparameter of linear-learner must be 'auto' or a "
                          f"float in the range [0, inf). Got {value!r} instead.")
    return number


def _estimator(hp: dict[str, Any]):
    from sklearn.linear_model import SGDClassifier, SGDRegressor

    kind = hp["predictor_type"]
    if hp["loss"] == "quantile_loss":
        raise ConfigError("loss quantile_loss is not mapped in tabpilot's Linear Learner; use "
                          "squared_loss, absolute_loss, huber_loss or an eps_insensitive loss")
    loss = LOSSES[hp["loss"]] or ("squared_error" if kind == "regressor" else "log_loss")
    classifier = kind != "regressor"
    if classifier != (loss in ("log_loss", "hinge")):
        raise ConfigError(f"loss {hp['loss']} does not fit predictor_type {kind}")
    l1, wd = _number(hp, "l1", 0.0), _number(hp, "wd", 0.0)
    alpha = l1 + wd
    rate = hp["learning_rate"]
    common = dict(penalty="elasticnet", alpha=alpha or 1e-6, l1_ratio=l1 / alpha if alpha else 0,
                  max_iter=hp["epochs"], tol=hp["early_stopping_tolerance"],
                  n_iter_no_change=hp["early_stopping_patience"],
                  fit_intercept=hp["use_bias"], random_state=hp["seed"],
                  learning_rate="optimal" if classifier and rate == "auto" else
                  "invscaling" if rate == "auto" else "constant",
                  eta0=0.01 if rate == "auto" else _number(hp, "learning_rate", 0.01))
    if not classifier:
        return SGDRegressor(loss=loss, epsilon=hp["huber_delta"] if loss == "huber"
                            else hp["loss_insensitivity"], **common)
    weight = hp["positive_example_weight_mult"]
    if weight == "balanced" or hp["balance_multiclass_weights"]:
        class_weight: Any = "balanced"
    else:
        class_weight = {1: _number(hp, "positive_example_weight_mult", 1.0)} \
            if kind == "binary_classifier" else None
    return SGDClassifier(loss=loss, class_weight=class_weight, **common)


def fit(hp: dict[str, Any], channels: dict[str, Channel], model_dir: Path,
        control: Control) -> dict[str, float]:
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    train = channels["train"]
    X, y = train.dense(NAME), train.y
    kind = hp["predictor_type"]
    _check_labels(kind, hp, y, train.name)
    mean = X.mean(axis=0) if hp["normalize_data"] else np.zeros(X.shape[1])
    scale = X.std(axis=0) if hp["normalize_data"] else np.ones(X.shape[1])
    scale[scale == 0] = 1.0
    y_mean, y_scale = 0.0, 1.0
    if kind == "regressor" and hp["normalize_label"] is not False:
        y_mean, y_scale = float(y.mean()), float(y.std() or 1.0)
    model = _estimator(hp)
    with warnings.catch_warnings():  # max_iter is the epochs asked for, not a failure
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit((X - mean) / scale, (y - y_mean) / y_scale if kind == "regressor" else y)
    coef = np.atleast_2d(model.coef_)
    intercept = np.atleast_1d(model.intercept_)
    classes = getattr(model, "classes_", np.array([]))
    arrays.save(model_dir / MODEL_FILE, predictor_type=kind, coef=coef, intercept=intercept,
                mean=mean, scale=scale, classes=classes, y_mean=y_mean, y_scale=y_scale)
    predictor = LinearPredictor(kind, coef, intercept, mean, scale, classes, y_mean, y_scale)
    metrics: dict[str, float] = {}
    for name in ("train", "validation", "test"):
        if name in channels:
            metrics.update(_metrics(name, predictor, channels[name]))
    control.record(hp["epochs"] - 1, metrics)
    return metrics


def _check_labels(kind: str, hp: dict[str, Any], y: np.ndarray, channel: str) -> None:
    if kind == "regressor":
        return
    if not np.all(y == np.round(y)) or y.min() < 0:
        raise DataError(f"channel {channel}: a {kind} needs labels 0, 1, ... (whole numbers); "
                        f"got {y[np.argmax((y != np.round(y)) | (y < 0))]!r}")
    top = 1 if kind == "binary_classifier" else (hp["num_classes"] or 0) - 1
    if kind == "multiclass_classifier" and hp["num_classes"] is None:
        raise ConfigError("predictor_type multiclass_classifier needs the hyperparameter "
                          "'num_classes'")
    if y.max() > top:
        raise DataError(f"channel {channel}: label {y.max():g} is out of range for {kind}: "
                        f"labels run from 0 to {top}")


def _metrics(channel: str, predictor: LinearPredictor, data: Channel) -> dict[str, float]:
    from sklearn import metrics as m

    X, y = data.dense(NAME), data.y
    scores = predictor.scores(X)
    if predictor.kind == "regressor":
        mse = float(m.mean_squared_error(y, scores))
        return {f"{channel}:mse": mse, f"{channel}:rmse": mse ** 0.5,
                f"{channel}:absolute_loss": float(m.mean_absolute_error(y, scores)),
                f"{channel}:objective_loss": mse}
    labels = predictor.labels(scores)
    if predictor.kind == "binary_classifier":
        out = {f"{channel}:binary_classification_accuracy": float(m.accuracy_score(y, labels)),
               f"{channel}:precision": float(m.precision_score(y, labels, zero_division=0)),
               f"{channel}:recall": float(m.recall_score(y, labels, zero_division=0)),
               f"{channel}:binary_f_beta": float(m.f1_score(y, labels, zero_division=0)),
               f"{channel}:objective_loss": float(m.log_loss(y, scores, labels=[0, 1]))}
        if len(np.unique(y)) == 2:
            out[f"{channel}:roc_auc_score"] = float(m.roc_auc_score(y, scores))
        return out
    return {f"{channel}:multiclass_accuracy": float(m.accuracy_score(y, labels)),
            f"{channel}:macro_f_beta": float(m.f1_score(y, labels, average="macro",
                                                        zero_division=0)),
            f"{channel}:objective_loss": float(m.log_loss(
                y, scores, labels=predictor.classes.tolist()))}


class LinearPredictor(Predictor):
    def __init__(self, kind: str, coef: np.ndarray, intercept: np.ndarray, mean: np.ndarray,
                 scale: np.ndarray, classes: np.ndarray, y_mean: float, y_scale: float) -> None:
        self.kind, self.coef, self.intercept = kind, coef, intercept
        self.mean, self.scale, self.classes = mean, scale, classes
        self.y_mean, self.y_scale = float(y_mean), float(y_scale)
        self.features = coef.shape[1]

    def scores(self, X: np.ndarray) -> np.ndarray:
        """Regressor: the prediction; binary: P(label 1); multiclass: class probabilities
        (a softmax over the one-vs-rest decisions)."""
        decision = ((X - self.mean) / self.scale) @ self.coef.T + self.intercept
        if self.kind == "regressor":
            return decision[:, 0] * self.y_scale + self.y_mean
        if self.kind == "binary_classifier":
            return 1.0 / (1.0 + np.exp(-decision[:, 0]))
        shifted = np.exp(decision - decision.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def labels(self, scores: np.ndarray) -> np.ndarray:
        if self.kind == "binary_classifier":
            return (scores > 0.5).astype(float)
        return self.classes[scores.argmax(axis=1)].astype(float)

    def records(self, X: np.ndarray) -> list[dict[str, object]]:
        scores = self.scores(X)
        if self.kind == "regressor":
            return [{"score": float(s)} for s in scores]
        labels = self.labels(scores)
        return [{"score": s.tolist() if np.ndim(s) else float(s), "predicted_label": float(lab)}
                for s, lab in zip(scores, labels, strict=True)]


def load(model_dir: Path) -> LinearPredictor:
    a = arrays.load(model_dir, MODEL_FILE, ("predictor_type", "coef", "intercept", "mean",
                                            "scale", "classes", "y_mean", "y_scale"))
    return LinearPredictor(str(a["predictor_type"]), a["coef"], a["intercept"], a["mean"],
                           a["scale"], a["classes"], float(a["y_mean"]), float(a["y_scale"]))
