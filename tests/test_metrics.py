from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from tabpilot.errors import ConfigError
from tabpilot.metrics import (
    METRICS,
    STANDARD_METRICS,
    check_metric_name,
    labels_from_proba,
    resolve_metric,
    score,
    score_all,
    tune_threshold,
)
from tabpilot.tasks import ProblemType

BIN, MULTI, REG = ProblemType.BINARY, ProblemType.MULTICLASS, ProblemType.REGRESSION


def _binary(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p1 = np.clip(0.3 * y + rng.uniform(0.1, 0.6, n), 0.01, 0.99)
    return y, np.column_stack([1 - p1, p1])


def _multiclass(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), y] += 1.0
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


@pytest.mark.parametrize("ptype, name", [(BIN, "F1"), (MULTI, "Accuracy"), (REG, "MSE")])
def test_default_metric(ptype: ProblemType, name: str) -> None:
    assert resolve_metric(None, ptype).name == name


@pytest.mark.parametrize("spelling", ["auc", "AUC", " Auc ", "aUc"])
def test_metric_names_are_case_insensitive(spelling: str) -> None:
    assert resolve_metric(spelling, BIN) is METRICS["AUC"]


def test_f1macro_resolves_for_multiclass() -> None:
    metric = resolve_metric("f1MACRO", MULTI)
    assert metric.name == "F1macro"
    assert metric.greater_is_better


def test_unknown_metric_raises() -> None:
    with pytest.raises(ConfigError, match="unknown metric 'Gini'"):
        resolve_metric("Gini", BIN)
    with pytest.raises(ConfigError, match="unknown metric"):
        check_metric_name("Gini")


def test_check_metric_name_accepts_known_names() -> None:
    check_metric_name("rmse")  # no error


@pytest.mark.parametrize("name, ptype", [
    ("RMSE", BIN), ("F1", MULTI), ("Precision", MULTI), ("AUC", REG), ("Accuracy", REG),
])
def test_metric_not_fitting_the_problem_type_raises(name: str, ptype: ProblemType) -> None:
    with pytest.raises(ConfigError, match=f"does not fit a {ptype.value} problem"):
        resolve_metric(name, ptype)


def test_standard_metrics_fit_their_problem_type() -> None:
    for ptype, names in STANDARD_METRICS.items():
        for name in names:
            assert ptype in METRICS[name].problem_types


def test_is_better_respects_direction() -> None:
    assert METRICS["AUC"].is_better(0.9, 0.8)
    assert not METRICS["AUC"].is_better(0.7, 0.8)
    assert METRICS["MSE"].is_better(1.0, 2.0)
    assert METRICS["MSE"].is_better(5.0, None)
    assert not METRICS["MSE"].is_better(float("nan"), None)


def test_binary_scores_equal_sklearn() -> None:
    y, proba = _binary()
    labels = (proba[:, 1] >= 0.5).astype(int)
    got = score_all(BIN, y, proba)
    assert set(got) == set(STANDARD_METRICS[BIN])
    assert got["F1"] == pytest.approx(skm.f1_score(y, labels))
    assert got["Accuracy"] == pytest.approx(skm.accuracy_score(y, labels))
    assert got["BalancedAccuracy"] == pytest.approx(skm.balanced_accuracy_score(y, labels))
    assert got["Precision"] == pytest.approx(skm.precision_score(y, labels))
    assert got["Recall"] == pytest.approx(skm.recall_score(y, labels))
    assert got["AUC"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert got["LogLoss"] == pytest.approx(skm.log_loss(y, proba))


def test_binary_scores_use_the_threshold() -> None:
    y, proba = _binary()
    labels = (proba[:, 1] >= 0.6).astype(int)
    got = score_all(BIN, y, proba, threshold=0.6)
    assert got["F1"] == pytest.approx(skm.f1_score(y, labels))
    assert got["Accuracy"] == pytest.approx(skm.accuracy_score(y, labels))
    assert got["AUC"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))


def test_weighted_scores_equal_sklearn() -> None:
    y, proba = _binary()
    w = np.random.default_rng(3).uniform(0.5, 2.0, len(y))
    labels = (proba[:, 1] >= 0.5).astype(int)
    assert score(METRICS["Accuracy"], y, proba, w) == pytest.approx(
        skm.accuracy_score(y, labels, sample_weight=w))
    assert score(METRICS["AUC"], y, proba, w) == pytest.approx(
        skm.roc_auc_score(y, proba[:, 1], sample_weight=w))


def test_multiclass_scores_equal_sklearn() -> None:
    y, proba = _multiclass()
    labels = proba.argmax(axis=1)
    got = score_all(MULTI, y, proba)
    assert set(got) == set(STANDARD_METRICS[MULTI])
    assert got["Accuracy"] == pytest.approx(skm.accuracy_score(y, labels))
    assert got["BalancedAccuracy"] == pytest.approx(skm.balanced_accuracy_score(y, labels))
    assert got["F1macro"] == pytest.approx(skm.f1_score(y, labels, average="macro"))
    assert got["PrecisionMacro"] == pytest.approx(skm.precision_score(y, labels, average="macro"))
    assert got["RecallMacro"] == pytest.approx(skm.recall_score(y, labels, average="macro"))
    assert got["LogLoss"] == pytest.approx(skm.log_loss(y, proba))
    assert got["AUC"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))


def test_regression_scores_equal_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    pred = y + rng.normal(scale=0.3, size=200)
    got = score_all(REG, y, pred)
    assert got["MSE"] == pytest.approx(skm.mean_squared_error(y, pred))
    assert got["RMSE"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)))
    assert got["MAE"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert got["R2"] == pytest.approx(skm.r2_score(y, pred))


def test_logloss_with_a_class_absent_from_the_labels() -> None:
    y = np.array([0, 1, 0, 1])
    proba = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1]])
    got = score(METRICS["LogLoss"], y, proba)
    assert got == pytest.approx(skm.log_loss(y, proba, labels=[0, 1, 2]))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_undefined_score_is_nan() -> None:
    y = np.zeros(10, dtype=int)  # AUC needs both classes
    proba = np.column_stack([np.full(10, 0.6), np.full(10, 0.4)])
    assert np.isnan(score(METRICS["AUC"], y, proba))


def test_labels_from_proba() -> None:
    proba = np.array([[0.7, 0.3], [0.4, 0.6], [0.55, 0.45]])
    assert labels_from_proba(proba, None).tolist() == [0, 1, 0]
    assert labels_from_proba(proba, 0.4).tolist() == [0, 1, 1]
    three = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    assert labels_from_proba(three, 0.1).tolist() == [1, 0]


def test_tune_threshold_improves_f1_on_an_imbalanced_problem() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    y = (rng.random(n) < 0.05).astype(np.int64)
    # a useful but poorly calibrated model: positives score about 0.2, negatives about 0.05
    p1 = np.clip(np.where(y == 1, 0.2, 0.05) + rng.normal(0, 0.04, n), 0.0, 1.0)
    proba = np.column_stack([1 - p1, p1])
    f1 = METRICS["F1"]
    threshold = tune_threshold(f1, y, proba)
    assert threshold < 0.3
    tuned = score(f1, y, proba, threshold=threshold)
    assert tuned > score(f1, y, proba, threshold=0.5) + 0.5
    assert tuned == pytest.approx(skm.f1_score(y, (p1 >= threshold).astype(int)))


def test_tune_threshold_keeps_half_for_probability_metrics_and_multiclass() -> None:
    y, proba = _binary()
    assert tune_threshold(METRICS["AUC"], y, proba) == 0.5
    y3, proba3 = _multiclass()
    assert tune_threshold(METRICS["Accuracy"], y3, proba3) == 0.5


def test_tune_threshold_prefers_half_among_ties() -> None:
    y = np.array([0, 0, 1, 1] * 25)
    p1 = np.array([0.1, 0.2, 0.8, 0.9] * 25)  # every threshold in (0.2, 0.8] is perfect
    assert tune_threshold(METRICS["F1"], y, np.column_stack([1 - p1, p1])) == 0.5
