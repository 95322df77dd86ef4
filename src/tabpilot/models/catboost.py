"""CatBoost with its ordered target statistics on native categoricals."""

from __future__ import annotations

from typing import Any

import numpy as np
from catboost import CatBoost, FeaturesData, Pool

from tabpilot.models.base import (
    FitData,
    ModelFamily,
    mean_best_iteration,
    predict_threads,
    record_curves,
)
from tabpilot.tasks import ProblemType

MAX_ROUNDS = 3000


class _Deadline:
    def __init__(self, data: FitData) -> None:
        self.data = data

    def after_iteration(self, info) -> bool:
        return not self.data.out_of_time()  # False stops training


class CatBoostFamily(ModelFamily):
    name = "catboost"
    label = "CatBoost"
    style = "native"
    # ~1 KB per training row (600k rows of diamonds-30: 1.1 GB); in a trial's time share
    # 200k rows also grow more trees and score better (RMSE 977 against 2446 on 600k, 25 s)
    max_rows = 200_000

    def _suggest(self, trial: Any, n_rows: int) -> dict[str, Any]:
        return {
            "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
            "depth": trial.suggest_int("depth", 4, 8),
            "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 1.0, 20.0, log=True),
            "random_strength": trial.suggest_float("random_strength", 0.1, 5.0, log=True),
        }

    def portfolio(self, problem_type: ProblemType) -> list[dict[str, Any]]:
        return [dict(learning_rate=0.08, depth=6, l2_leaf_reg=3.0, random_strength=1.0)]

    def fit(self, params: dict[str, Any], data: FitData) -> FittedCatBoost:
        p = dict(params)
        rounds = int(p.pop("n_estimators", MAX_ROUNDS))
        loss = {ProblemType.BINARY: "Logloss", ProblemType.MULTICLASS: "MultiClass",
                ProblemType.REGRESSION: "RMSE"}[data.problem_type]
        if data.problem_type.is_classification:
            p["class_names"] = list(range(data.n_classes))
        model = CatBoost(dict(p, iterations=rounds, loss_function=loss,
                              **full_run_settings(loss), thread_count=data.n_threads,
                              random_seed=data.seed, verbose=False, allow_writing_files=False))
        train = _pool(data.X, data.categorical_indices, data.y, data.weights)
        eval_set = None
        if data.X_valid is not None and "n_estimators" not in params:
            eval_set = _pool(data.X_valid, data.categorical_indices, data.y_valid)
        model.fit(train, eval_set=eval_set, early_stopping_rounds=100 if eval_set else None,
                  use_best_model=eval_set is not None, callbacks=[_Deadline(data)])
        data.info["best_iteration"] = (model.get_best_iteration() or model.tree_count_ - 1) + 1
        # CatBoost measures the training loss every round anyway: keeping it costs nothing
        history = model.get_evals_result()
        if data.curves and loss in history.get("learn", {}):
            validation = history.get("validation", {}).get(loss, [])
            record_curves(data, loss, history["learn"][loss], validation,
                          data.info["best_iteration"] if validation else None)
        return FittedCatBoost(model, list(data.categorical_indices))

    def refit_params(self, params: dict[str, Any], infos: list[dict[str, Any]]
                     ) -> dict[str, Any]:
        return dict(params, n_estimators=mean_best_iteration(infos, 300))

    def predict(self, estimator: FittedCatBoost, X: Any, problem_type: ProblemType
                ) -> np.ndarray:
        pool = _pool(X, estimator.categorical_indices)
        kind = "Probability" if problem_type.is_classification else "RawFormulaVal"
        threads = predict_threads(X.shape[0]) or -1
        out = estimator.model.predict(pool, prediction_type=kind, thread_count=threads)
        return np.asarray(out, dtype=np.float64)


def full_run_settings(loss: str) -> dict[str, int]:
    """Settings CatBoost would choose itself for a long run, pinned.

    Below about 150 iterations CatBoost picks cheaper ones (max_ctr_complexity 1, one leaf
    estimation step for Logloss), so a refit or a rerun with the number of trees a trial
    kept would otherwise train different trees from those the trial scored.
    """
    return {"max_ctr_complexity": 4, **({"leaf_estimation_iterations": 10}
                                         if loss == "Logloss" else {})}


class FittedCatBoost:
    """The CatBoost model and which encoded columns it reads as categories."""

    def __init__(self, model: CatBoost, categorical_indices: list[int]) -> None:
        self.model = model
        self.categorical_indices = categorical_indices


def _pool(X: np.ndarray, cats: list[int], y=None, weights=None) -> Pool:
    """Numeric columns as float32, category codes as strings ('-1' for missing or unseen)."""
    X = np.asarray(X.toarray() if hasattr(X, "toarray") else X)
    cat_set = set(cats)
    num_idx = [i for i in range(X.shape[1]) if i not in cat_set]
    # column by column: no float64 copy of the numeric block on the way to float32
    num = np.empty((X.shape[0], len(num_idx)), dtype=np.float32)
    for k, i in enumerate(num_idx):
        num[:, k] = X[:, i]
    if cats:
        codes = np.nan_to_num(X[:, cats], nan=-1).astype(np.int64)
        # one string object per distinct code, shared by its rows (not one per cell)
        distinct, inverse = np.unique(codes, return_inverse=True)
        cat = distinct.astype(str).astype(object)[inverse.reshape(codes.shape)]
        features = FeaturesData(num_feature_data=num, cat_feature_data=cat)
    else:
        features = FeaturesData(num_feature_data=num)
    return Pool(features, label=y, weight=weights)
