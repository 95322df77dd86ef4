"""Per-round curves recorded by the real model families, and Overfit on real fits."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.metrics import log_loss, mean_squared_error

from tabpilot.diagnostics.rules import curve_rules, overfit
from tabpilot.models import FitData, get_family
from tabpilot.models.base import CURVE_TRAIN_ROWS, curve_train_rows
from tabpilot.tasks import ProblemType

# rounds each family waits past its best before stopping, at learning rate 0.1
PATIENCE = {"lightgbm": 50, "xgboost": 50, "catboost": 100}


def _binary(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = (X[:, 0] - 0.5 * X[:, 1] + rng.normal(size=n) > 0).astype(int)
    return X, y


def _fit(family: str, params: dict, X, y, valid: bool = True, **kw) -> tuple[object, FitData]:
    n_fit = int(len(y) * 0.75)
    data = FitData(X=X[:n_fit], y=y[:n_fit], problem_type=kw.pop("problem", ProblemType.BINARY),
                   n_classes=kw.pop("n_classes", 2), categorical_indices=[],
                   X_valid=X[n_fit:] if valid else None, y_valid=y[n_fit:] if valid else None,
                   **kw)
    return get_family(family).fit(dict(params), data), data


BOOSTERS = {
    "lightgbm": dict(learning_rate=0.1, num_leaves=15, min_child_samples=10,
                     feature_fraction=1.0, bagging_fraction=1.0, lambda_l2=1.0,
                     min_data_per_group=20, cat_smooth=10.0),
    "xgboost": dict(learning_rate=0.1, max_depth=4, min_child_weight=1.0, subsample=1.0,
                    colsample_bytree=1.0, reg_lambda=1.0),
    "catboost": dict(learning_rate=0.1, depth=4, l2_leaf_reg=3.0, random_strength=1.0),
}


@pytest.mark.parametrize("family", sorted(BOOSTERS))
def test_boosting_curves_have_one_value_per_round_trained(family: str) -> None:
    X, y = _binary(800)
    _, data = _fit(family, BOOSTERS[family], X, y)
    curves = data.info["curves"]
    best = data.info["best_iteration"]
    assert curves["best_iteration"] == best and curves["higher_is_better"] is False
    # early stopping: the best round, then the rounds of patience that found no better
    assert len(curves["train"]) == len(curves["validation"]) == best + PATIENCE[family]
    assert int(np.argmin(curves["validation"])) + 1 == best
    assert curves["train"][-1] < curves["train"][0]  # the training loss falls
    # without a validation set (a refit): the training curve alone, one value per tree
    _, refit = _fit(family, dict(BOOSTERS[family], n_estimators=37), X, y, valid=False)
    assert len(refit.info["curves"]["train"]) == 37
    assert refit.info["curves"]["validation"] == []
    assert refit.info["curves"]["best_iteration"] is None


def test_lightgbm_curves_are_the_losses_of_the_kept_model() -> None:
    """Past CURVE_TRAIN_ROWS the training curve is measured on a fixed sample of training
    rows; at the best round both curves equal the log loss of the model fit returns."""
    X, y = _binary(4000)
    booster, data = _fit("lightgbm", BOOSTERS["lightgbm"], X, y)
    curves, best = data.info["curves"], data.info["best_iteration"]
    rows = curve_train_rows(data)
    assert rows is not None and len(rows) == CURVE_TRAIN_ROWS
    assert curves["train"][best - 1] == pytest.approx(
        log_loss(data.y[rows], booster.predict(data.X[rows])), rel=1e-6)
    assert curves["validation"][best - 1] == pytest.approx(
        log_loss(data.y_valid, booster.predict(data.X_valid)), rel=1e-6)


def test_mlp_curves_have_one_value_per_epoch() -> None:
    X, y = _binary(600)
    params = dict(width=16, depth=1, alpha=1e-4, learning_rate_init=1e-2)
    model, data = _fit("mlp", params, X, y)
    curves = data.info["curves"]
    assert len(curves["train"]) == len(curves["validation"]) == data.info["epochs"]
    assert curves["metric"] == "log_loss"
    # the last epoch's validation value is the log loss of the network returned
    assert curves["validation"][-1] == pytest.approx(
        log_loss(data.y_valid, model.predict_proba(data.X_valid)), rel=1e-9)


def test_mlp_regression_curve_is_half_the_squared_error_on_the_standardised_target() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 4))
    y = 50 + 20 * X[:, 0] + 5 * rng.normal(size=600)
    params = dict(width=16, depth=1, alpha=1e-4, learning_rate_init=1e-2)
    model, data = _fit("mlp", params, X, y, problem=ProblemType.REGRESSION, n_classes=0)
    curves = data.info["curves"]
    assert curves["metric"] == "half_squared_error"
    assert len(curves["validation"]) == data.info["epochs"]
    scaled = (data.y_valid - model.predict(data.X_valid)) / data.info["y_std"]
    assert curves["validation"][-1] == pytest.approx(np.mean(scaled ** 2) / 2, rel=1e-9)


def test_curves_can_be_left_out() -> None:
    X, y = _binary(400)
    _, data = _fit("lightgbm", BOOSTERS["lightgbm"], X, y, curves=False)
    assert "curves" not in data.info and data.info["best_iteration"] > 0


# -- Overfit on real fits: scikit-learn's diabetes table (442 rows, noisy) ----------------

OVERFITTING = dict(learning_rate=0.2, num_leaves=256, min_child_samples=2,
                   feature_fraction=1.0, bagging_fraction=1.0, lambda_l2=1e-3,
                   min_data_per_group=2, cat_smooth=1.0)
HEALTHY = dict(learning_rate=0.05, num_leaves=4, min_child_samples=40, feature_fraction=0.8,
               bagging_fraction=0.8, lambda_l2=10.0, min_data_per_group=50, cat_smooth=10.0)


def _diabetes_fit(params: dict) -> dict:
    X, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    _, data = _fit("lightgbm", params, X[order], y[order], problem=ProblemType.REGRESSION,
                   n_classes=0)
    return data.info["curves"]


def test_an_overfitting_configuration_is_flagged() -> None:
    curves = _diabetes_fit(OVERFITTING)
    found = overfit(curves)
    assert found["RuleEvaluationStatus"] == "IssuesFound", found["StatusDetails"]
    best = curves["best_iteration"]
    assert curves["validation"][best - 1] > 1.2 * curves["train"][best - 1]


def test_a_healthy_configuration_is_not_flagged() -> None:
    curves = _diabetes_fit(HEALTHY)
    found = {r["RuleConfigurationName"]: r["RuleEvaluationStatus"] for r in curve_rules(curves)}
    assert found == {"Overfit": "NoIssuesFound", "Overtraining": "NoIssuesFound",
                     "LossNotDecreasing": "NoIssuesFound"}
    # its validation loss is the lower of the two: the rule flags the worse model
    assert min(curves["validation"]) < min(_diabetes_fit(OVERFITTING)["validation"])


def test_regression_curves_are_mean_squared_errors() -> None:
    X, y = load_diabetes(return_X_y=True)
    booster, data = _fit("lightgbm", HEALTHY, X, y, problem=ProblemType.REGRESSION,
                         n_classes=0)
    best = data.info["best_iteration"]
    assert data.info["curves"]["validation"][best - 1] == pytest.approx(
        mean_squared_error(data.y_valid, booster.predict(data.X_valid)), rel=1e-6)
