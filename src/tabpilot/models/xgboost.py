"""XGBoost (hist) with native categoricals, early stopping and a wall-clock stop; on a
regression target that is never negative, a choice of loss: squared error or Tweedie's."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xgboost as xgb

from tabpilot.models.base import (
    LOSS,
    FitData,
    ModelFamily,
    curve_train_rows,
    mean_best_iteration,
    record_curves,
)
from tabpilot.tasks import ProblemType

MAX_ROUNDS = 5000
# the regression losses, the default first: squared error, and Tweedie's (log link,
# variance power 1.5) for a target that is never negative
REGRESSION_LOSSES = ("reg:squarederror", "reg:tweedie")


class _Deadline(xgb.callback.TrainingCallback):
    def __init__(self, data: FitData) -> None:
        super().__init__()
        self.data = data

    def after_iteration(self, model, epoch, evals_log) -> bool:
        return self.data.out_of_time()


class XGBoostFamily(ModelFamily):
    name = "xgboost"
    label = "XGBoost"
    style = "native"
    nonnegative_losses = REGRESSION_LOSSES

    def _suggest(self, trial: Any, n_rows: int) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "max_depth": trial.suggest_int("max_depth", 3, 10),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20.0, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        }

    def log_link(self, estimator: xgb.Booster) -> bool:
        return json.loads(estimator.save_config())["learner"]["objective"]["name"] == \
            "reg:tweedie"

    def portfolio(self, problem_type: ProblemType) -> list[dict[str, Any]]:
        base = dict(learning_rate=0.05, max_depth=6, min_child_weight=1.0, subsample=0.8,
                    colsample_bytree=0.8, reg_lambda=1.0)
        return [base, dict(base, learning_rate=0.03, max_depth=9, min_child_weight=2.0,
                           colsample_bytree=0.6)]

    def fit(self, params: dict[str, Any], data: FitData) -> xgb.Booster:
        rounds = int(params.get("n_estimators", MAX_ROUNDS))
        p = {k: v for k, v in params.items() if k not in ("n_estimators", LOSS)}
        full = dict(p, tree_method="hist", nthread=data.n_threads, seed=data.seed,
                    max_cat_to_onehot=8, verbosity=0)
        full.update(training_loss(data.problem_type, params))
        if data.problem_type is ProblemType.MULTICLASS:
            full["num_class"] = data.n_classes
        types = _feature_types(data.X.shape[1], data.categorical_indices)
        dtrain = xgb.DMatrix(data.X, data.y, weight=data.weights, feature_types=types,
                             enable_categorical=True, nthread=data.n_threads)
        evals, early, history = [], None, {}
        if data.curves:  # first: early stopping watches the last set only
            evals.append((_train_sample(dtrain, data, types), "train"))
        validated = data.X_valid is not None and "n_estimators" not in params
        if validated:
            dvalid = xgb.DMatrix(data.X_valid, data.y_valid, feature_types=types,
                                 enable_categorical=True, nthread=data.n_threads)
            evals.append((dvalid, "valid"))
            early = int(np.clip(5 / p["learning_rate"], 30, 300))
        booster = xgb.train(full, dtrain, num_boost_round=rounds, evals=evals,
                            early_stopping_rounds=early, verbose_eval=False,
                            evals_result=history, callbacks=[_Deadline(data)])
        best = getattr(booster, "best_iteration", None)
        n_rounds = (best + 1) if best is not None else booster.num_boosted_rounds()
        data.info["best_iteration"] = n_rounds
        if data.curves:
            metric = full["eval_metric"]
            record_curves(data, metric, history["train"][metric],
                          history["valid"][metric] if validated else [],
                          n_rounds if validated else None)
        booster = booster[:n_rounds]
        booster.set_param({"nthread": 1})  # serving: one row at a time
        return booster

    def refit_params(self, params: dict[str, Any], infos: list[dict[str, Any]]
                     ) -> dict[str, Any]:
        return dict(params, n_estimators=mean_best_iteration(infos, 200))

    def predict(self, estimator: xgb.Booster, X: Any, problem_type: ProblemType) -> np.ndarray:
        # the booster remembers which columns are categorical (its feature_types)
        out = estimator.inplace_predict(X)
        if problem_type is ProblemType.BINARY:
            return np.column_stack([1.0 - out, out])
        return np.asarray(out, dtype=np.float64)


def training_loss(problem_type: ProblemType, params: dict[str, Any]) -> dict[str, str]:
    """XGBoost's objective and early-stopping metric for a task and a candidate's
    parameters: the one mapping for training and for the candidate's exported code."""
    if problem_type is ProblemType.BINARY:
        return {"objective": "binary:logistic", "eval_metric": "logloss"}
    if problem_type is ProblemType.MULTICLASS:
        return {"objective": "multi:softprob", "eval_metric": "mlogloss"}
    return regression_loss(params)


def regression_loss(params: dict[str, Any]) -> dict[str, str]:
    """XGBoost's objective for a regression candidate's parameters, and its metric: RMSE
    for either loss (for Tweedie's, of its predictions after the link), since the job
    scores RMSE and early stopping watches it."""
    loss = params.get(LOSS, REGRESSION_LOSSES[0])
    if loss not in REGRESSION_LOSSES:
        raise ValueError(f"XGBoost regression loss {loss!r}: use one of {REGRESSION_LOSSES}")
    return {"objective": loss, "eval_metric": "rmse"}


def _train_sample(dtrain: xgb.DMatrix, data: FitData, types: list[str] | None
                  ) -> xgb.DMatrix:
    """The training matrix (XGBoost scores it from its cached predictions), or a fixed
    sample of its rows on a large table (curve_train_rows)."""
    rows = curve_train_rows(data)
    if rows is None:
        return dtrain
    weights = None if data.weights is None else data.weights[rows]
    return xgb.DMatrix(data.X[rows], data.y[rows], weight=weights, feature_types=types,
                       enable_categorical=True, nthread=data.n_threads)


def _feature_types(n: int, cats: list[int]) -> list[str] | None:
    if not cats:
        return None
    idx = set(cats)
    return ["c" if i in idx else "q" for i in range(n)]
