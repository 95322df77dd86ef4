"""scikit-learn families: random forest, extra trees, linear models and an MLP."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor

from tabpilot.models import sklearn_fast
from tabpilot.models.base import (
    CURVE_TRAIN_ROWS,
    FitData,
    ModelFamily,
    all_classes,
    record_curves,
)
from tabpilot.tasks import ProblemType

TREE_CHUNK = 25
FIRST_CHUNK = 5
MAX_EPOCHS = 200
VALID_MIN_ROWS = 500  # validation rows an MLP's validation curve may always use


class _ForestFamily(ModelFamily):
    style = "ordinal"
    slow = True
    classifier: type
    regressor: type

    def _suggest(self, trial: Any, n_rows: int) -> dict[str, Any]:
        return {
            "n_estimators": trial.suggest_int("n_estimators", 100, 500, step=50),
            "max_features": trial.suggest_float("max_features", 0.2, 1.0),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
        }

    def portfolio(self, problem_type: ProblemType) -> list[dict[str, Any]]:
        mf = 0.5 if problem_type.is_classification else 0.8
        return [dict(n_estimators=200, max_features=mf, min_samples_leaf=2)]

    def fit(self, params: dict[str, Any], data: FitData) -> Any:
        cls = self.classifier if data.problem_type.is_classification else self.regressor
        target = int(params["n_estimators"])
        model = cls(n_estimators=0, max_features=params["max_features"],
                    min_samples_leaf=params["min_samples_leaf"], n_jobs=data.n_threads,
                    random_state=data.seed, warm_start=True)
        # grow the forest in chunks so a deadline stops it with the trees grown so far: a
        # few trees first to time one, then chunks that fit in the time left (a chunk of
        # 25 trees on a wide sparse table can take longer than a whole trial's share)
        started = time.time()
        step = FIRST_CHUNK
        while model.n_estimators < target:
            model.n_estimators = min(target, model.n_estimators + step)
            model.fit(data.X, data.y, sample_weight=data.weights)
            per_tree = max(time.time() - started, 1e-9) / model.n_estimators
            step = int(min(TREE_CHUNK, (data.deadline - time.time()) / per_tree))
            if step < 1:
                data.info["stopped_by_deadline"] = model.n_estimators < target
                break
        data.info["n_estimators"] = model.n_estimators  # the trees grown, deadline or not
        model.set_params(n_jobs=1)
        model.n_classes_total_ = data.n_classes
        return model

    def refit_params(self, params: dict[str, Any], infos: list[dict[str, Any]]
                     ) -> dict[str, Any]:
        """As many trees as the validated fits grew, on average: a deadline may have stopped
        them short of n_estimators, and the refit keeps their scores (california_housing at
        60 s: a forest of 200 trees grew 62 in its 3 s trial; its refit, asked for 200 on
        more rows, ran out of time after 11 s)."""
        grown = [int(i["n_estimators"]) for i in infos if i.get("n_estimators")]
        return dict(params, n_estimators=round(float(np.mean(grown)))) if grown else params


class RandomForestFamily(_ForestFamily):
    name = "random_forest"
    label = "RandomForest"
    classifier = RandomForestClassifier
    regressor = RandomForestRegressor


class ExtraTreesFamily(_ForestFamily):
    name = "extra_trees"
    label = "ExtraTrees"
    classifier = ExtraTreesClassifier
    regressor = ExtraTreesRegressor


class LinearFamily(ModelFamily):
    name = "linear"
    label = "Linear"
    style = "onehot"
    # its one-hot matrix is dense float64 (600k rows x 144 columns: 0.9 GB); with a few
    # hundred coefficients, 200k rows fit as well (diamonds-30 RMSE 1130.9 against 1130.5)
    max_rows = 200_000

    def _suggest(self, trial: Any, n_rows: int) -> dict[str, Any]:
        return {"C": trial.suggest_float("C", 1e-3, 100.0, log=True)}

    def portfolio(self, problem_type: ProblemType) -> list[dict[str, Any]]:
        return [dict(C=1.0)]

    def fit(self, params: dict[str, Any], data: FitData) -> Any:
        if data.problem_type.is_classification:
            model = LogisticRegression(C=params["C"], max_iter=500, solver="lbfgs")
        else:
            # centring a copy of a large dense input would double the trial's memory
            model = Ridge(alpha=1.0 / params["C"], copy_X=not data.X_writable)
        model.fit(data.X, data.y, sample_weight=data.weights)
        model.n_classes_total_ = data.n_classes
        return model

    def direct_predict(self, estimator: Any, X: Any, problem_type: ProblemType
                       ) -> np.ndarray | None:
        return sklearn_fast.linear(estimator, X, problem_type.is_classification)


class MLPFamily(ModelFamily):
    name = "mlp"
    label = "MLP"
    style = "onehot"
    slow = True

    def _suggest(self, trial: Any, n_rows: int) -> dict[str, Any]:
        return {
            "width": trial.suggest_int("width", 32, 256, log=True),
            "depth": trial.suggest_int("depth", 1, 3),
            "alpha": trial.suggest_float("alpha", 1e-6, 1e-2, log=True),
            "learning_rate_init": trial.suggest_float("learning_rate_init", 1e-4, 1e-2, log=True),
        }

    def portfolio(self, problem_type: ProblemType) -> list[dict[str, Any]]:
        return [dict(width=128, depth=2, alpha=1e-4, learning_rate_init=1e-3)]

    def fit(self, params: dict[str, Any], data: FitData) -> Any:
        cls = MLPClassifier if data.problem_type.is_classification else MLPRegressor
        model = cls(hidden_layer_sizes=(params["width"],) * params["depth"],
                    alpha=params["alpha"], learning_rate_init=params["learning_rate_init"],
                    early_stopping=True, n_iter_no_change=10, max_iter=1, warm_start=True,
                    random_state=data.seed, batch_size=min(256, max(32, data.X.shape[0] // 20)))
        y = data.y if data.problem_type.is_classification else _standardise(data)
        validation = _ValidationLoss(data) if data.curves and data.X_valid is not None \
            else None
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            # one epoch per call, so that the deadline is checked between epochs
            for epoch in range(1, MAX_EPOCHS + 1):
                model.fit(data.X, y)
                data.info["epochs"] = epoch  # what a rerun needs to train the same network
                if validation is not None:
                    validation.measure(model)
                if model._no_improvement_count > model.n_iter_no_change or \
                        data.out_of_time():
                    break
        if data.curves:
            # loss_curve_: the mean loss over each epoch's minibatches, as the network
            # changed during the epoch (free); validation: at the epoch's end
            losses = validation.losses if validation is not None else []
            record_curves(data, "log_loss" if data.problem_type.is_classification
                          else "half_squared_error", model.loss_curve_, losses,
                          int(np.argmin(losses)) + 1 if losses else None)
        model.n_classes_total_ = data.n_classes
        return model if data.problem_type.is_classification else _Rescaled(model, data.info)

    def direct_predict(self, estimator: Any, X: Any, problem_type: ProblemType
                       ) -> np.ndarray | None:
        if isinstance(estimator, _Rescaled):
            values = sklearn_fast.mlp(estimator.model, X, classification=False)
            return None if values is None else values * estimator.std + estimator.mean
        return sklearn_fast.mlp(estimator, X, problem_type.is_classification)

    def bag(self, estimators: list[Any], problem_type: ProblemType
            ) -> Callable[[Any], np.ndarray | None] | None:
        classification = problem_type.is_classification
        stacked = sklearn_fast.MLPBag.of(estimators, classification)
        if stacked is None or not classification:
            return stacked
        first = estimators[0]  # every network has its classes: widened as each would be
        return lambda X: None if (out := stacked(X)) is None else all_classes(first, out)


class _ValidationLoss:
    """The MLP's own training loss, measured after each epoch on validation rows: log
    loss, or half the squared error on the standardised target, as scikit-learn's
    loss_curve_ reports it on the training rows.

    A forward pass over validation rows costs about a third of an epoch's pass over as many
    training rows (no backward pass, no update), so a fixed sample of at most an eighth of
    the training rows (and CURVE_TRAIN_ROWS; every row of a small table, up to
    VALID_MIN_ROWS) keeps the curve's cost near 5 % of the fit's."""

    def __init__(self, data: FitData) -> None:
        n = data.X_valid.shape[0]
        cap = min(CURVE_TRAIN_ROWS, max(VALID_MIN_ROWS, data.X.shape[0] // 8))
        rows = np.arange(n) if n <= cap else np.sort(
            np.random.default_rng(data.seed).choice(n, cap, replace=False))
        self.X = data.X_valid[rows]
        self.classification = data.problem_type.is_classification
        y = np.asarray(data.y_valid)[rows]
        self.y = y if self.classification else \
            (y - data.info["y_mean"]) / data.info["y_std"]
        self.losses: list[float] = []

    def measure(self, model: Any) -> None:
        # the forward pass without scikit-learn's per-call input checks, where it can
        out = sklearn_fast.mlp(model, self.X, self.classification)
        if not self.classification:
            values = model.predict(self.X) if out is None else out
            self.losses.append(float(np.mean((self.y - values) ** 2) / 2))
            return
        proba = model.predict_proba(self.X) if out is None else out
        at = np.searchsorted(model.classes_, self.y).clip(0, len(model.classes_) - 1)
        known = model.classes_[at] == self.y  # a class the network never saw: p = eps
        p = np.where(known, proba[np.arange(len(self.y)), at], 0.0)
        self.losses.append(float(-np.mean(np.log(np.clip(p, 1e-15, 1.0)))))


def _standardise(data: FitData) -> np.ndarray:
    mean, std = float(np.mean(data.y)), float(np.std(data.y)) or 1.0
    data.info["y_mean"], data.info["y_std"] = mean, std
    return (data.y - mean) / std


class _Rescaled:
    """A regressor trained on a standardised target, predicting in the original units."""

    def __init__(self, model: Any, info: dict[str, Any]) -> None:
        self.model = model
        self.mean = info["y_mean"]
        self.std = info["y_std"]

    def predict(self, X: Any) -> np.ndarray:
        return self.model.predict(X) * self.std + self.mean
