"""LightGBM with native categoricals, early stopping and a wall-clock stop; on a regression
target that is never negative, a choice of loss: squared error or Tweedie's."""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np

from tabpilot.models.base import (
    LOSS,
    FitData,
    ModelFamily,
    curve_train_rows,
    mean_best_iteration,
    predict_threads,
    record_curves,
)
from tabpilot.tasks import ProblemType

MAX_ROUNDS = 5000
# the regression losses, the default first: squared error, and Tweedie's (log link,
# variance power 1.5) for a target that is never negative
REGRESSION_LOSSES = ("regression", "tweedie")


class LightGBMFamily(ModelFamily):
    name = "lightgbm"
    label = "LightGBM"
    style = "native"
    nonnegative_losses = REGRESSION_LOSSES

    def _suggest(self, trial: Any, n_rows: int) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 4, 256, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 2, 100, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.3, 1.0),
            "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
            "min_data_per_group": trial.suggest_int("min_data_per_group", 2, 100, log=True),
            "cat_smooth": trial.suggest_float("cat_smooth", 1.0, 50.0, log=True),
        }

    def portfolio(self, problem_type: ProblemType) -> list[dict[str, Any]]:
        base = dict(learning_rate=0.05, num_leaves=31, min_child_samples=20,
                    feature_fraction=0.9, bagging_fraction=1.0, lambda_l2=1e-3,
                    min_data_per_group=100, cat_smooth=10.0)
        return [
            base,
            dict(base, learning_rate=0.03, num_leaves=128, min_child_samples=5,
                 feature_fraction=0.7, lambda_l2=1.0, min_data_per_group=20),
            dict(base, learning_rate=0.08, num_leaves=8, min_child_samples=30,
                 feature_fraction=0.6, bagging_fraction=0.8, lambda_l2=5.0, cat_smooth=20.0),
        ]

    def log_link(self, estimator: lgb.Booster) -> bool:
        return estimator.params.get("objective") == "tweedie"

    def _objective(self, data: FitData, params: dict[str, Any]) -> dict[str, Any]:
        if data.problem_type is ProblemType.BINARY:
            return {"objective": "binary"}
        if data.problem_type is ProblemType.MULTICLASS:
            return {"objective": "multiclass", "num_class": data.n_classes}
        return regression_loss(params)

    def fit(self, params: dict[str, Any], data: FitData) -> lgb.Booster:
        # max_rounds: a cap on the rounds that early stopping may reach (a distilled student)
        rounds = int(params.get("n_estimators", params.get("max_rounds", MAX_ROUNDS)))
        p = {k: v for k, v in params.items()
             if k not in ("n_estimators", "max_rounds", LOSS)}
        full = dict(p, **self._objective(data, params), verbosity=-1,
                    num_threads=data.n_threads, seed=data.seed,
                    bagging_freq=1 if p.get("bagging_fraction", 1) < 1 else 0,
                    max_cat_to_onehot=8, deterministic=True, force_row_wise=True)
        train = lgb.Dataset(data.X, data.y, weight=data.weights,
                            categorical_feature=data.categorical_indices or "auto",
                            free_raw_data=False)
        callbacks = [_deadline_callback(data)]
        valid_sets, names, history = [], [], {}
        validated = data.X_valid is not None and "n_estimators" not in params
        if validated:
            valid_sets.append(lgb.Dataset(data.X_valid, data.y_valid, reference=train))
            names.append("valid")
            callbacks.append(lgb.early_stopping(_patience(p["learning_rate"]), verbose=False))
        if data.curves:
            # named as the training set, so early stopping never watches it
            valid_sets.append(_train_sample(train, data))
            names.append(TRAIN_NAME)
        if valid_sets:
            callbacks.append(lgb.record_evaluation(history))
        booster = lgb.train(full, train, num_boost_round=rounds, valid_sets=valid_sets,
                            valid_names=names, callbacks=callbacks)
        best = booster.current_iteration()
        if validated:  # all default metrics (logloss, l2) are minimised
            best = int(np.argmin(_curve(history, "valid"))) + 1
        data.info["best_iteration"] = best
        if data.curves:
            metric = next(iter(history[TRAIN_NAME]))
            record_curves(data, metric, _curve(history, TRAIN_NAME),
                          _curve(history, "valid") if validated else [],
                          best if validated else None)
        return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))

    def refit_params(self, params: dict[str, Any], infos: list[dict[str, Any]]
                     ) -> dict[str, Any]:
        return dict(params, n_estimators=mean_best_iteration(infos, 200))

    def predict(self, estimator: lgb.Booster, X: Any, problem_type: ProblemType) -> np.ndarray:
        out = estimator.predict(X, num_threads=predict_threads(X.shape[0]))
        if problem_type is ProblemType.BINARY:
            return np.column_stack([1.0 - out, out])
        return np.asarray(out, dtype=np.float64)


def regression_loss(params: dict[str, Any]) -> dict[str, Any]:
    """LightGBM's objective for a regression candidate's parameters, and its metric: a
    Tweedie model is early-stopped on squared error too (its predictions, after the link),
    since the job scores its RMSE."""
    loss = params.get(LOSS, REGRESSION_LOSSES[0])
    if loss not in REGRESSION_LOSSES:
        raise ValueError(f"LightGBM regression loss {loss!r}: use one of {REGRESSION_LOSSES}")
    return {"objective": loss} if loss == "regression" else {"objective": loss, "metric": "l2"}


TRAIN_NAME = "training"  # LightGBM's name for the training set: early stopping skips it


def _train_sample(train: lgb.Dataset, data: FitData) -> lgb.Dataset:
    """The training set, or a fixed sample of its rows on a large table (curve_train_rows):
    LightGBM scores the training set itself from its own running predictions, a sample by
    adding each new tree's output, either way without predicting every row again."""
    rows = curve_train_rows(data)
    if rows is None:
        return train
    weights = None if data.weights is None else data.weights[rows]
    return lgb.Dataset(data.X[rows], data.y[rows], weight=weights, reference=train)


def _curve(history: dict[str, Any], name: str) -> list[float]:
    return next(iter(history[name].values()))


def _patience(learning_rate: float) -> int:
    return int(np.clip(5 / learning_rate, 30, 300))


def _deadline_callback(data: FitData):
    def callback(env: lgb.callback.CallbackEnv) -> None:
        if env.iteration > 0 and data.out_of_time():
            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list or [])

    callback.order = 40  # type: ignore[attr-defined]
    return callback
