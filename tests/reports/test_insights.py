from __future__ import annotations

import numpy as np
import pytest

from tabpilot.metrics import score_all
from tabpilot.reports.bootstrap import resampled_metrics
from tabpilot.reports.insights import model_insights
from tabpilot.tasks import ProblemType


def _binary(n: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.25 + 0.5 * y + rng.normal(0, 0.2, n), 0.001, 0.999)
    return y, np.column_stack([1 - p, p])


def test_binary_insights_hold_every_section() -> None:
    y, proba = _binary()
    out = model_insights(ProblemType.BINARY, y, proba, ["no", "yes"], 0.5)
    assert out["rows"] == 600
    auc = out["metrics"]["AUC"]
    assert auc["lower"] <= auc["value"] <= auc["upper"]
    assert 0.9 < auc["value"] <= 1.0
    b = out["binary"]
    assert b["positive_class"] == "yes" and b["threshold"] == 0.5
    assert b["roc_curve"]["fpr"][0] == 0.0 and b["roc_curve"]["tpr"][-1] == 1.0
    assert len(b["precision_recall_curve"]["recall"]) == len(
        b["precision_recall_curve"]["precision"])
    matrix = np.array(b["confusion_matrix"]["matrix"])
    assert matrix.sum() == 600 and matrix.shape == (2, 2)
    assert [g["decile"] for g in b["gain_lift"]] == list(range(1, 11))
    assert b["gain_lift"][-1]["cumulative_gain"] == pytest.approx(1.0)
    assert b["gain_lift"][0]["lift"] > 1.5  # the top decile holds mostly positives
    assert len(b["calibration"]["mean_predicted"]) == len(b["calibration"]["fraction_positive"])
    assert sum(out["predicted_label_counts"]) == 600


def test_the_threshold_shapes_the_confusion_matrix() -> None:
    y, proba = _binary()
    low = model_insights(ProblemType.BINARY, y, proba, ["no", "yes"], 0.05)
    high = model_insights(ProblemType.BINARY, y, proba, ["no", "yes"], 0.95)
    predicted_yes = lambda o: np.array(o["binary"]["confusion_matrix"]["matrix"])[:, 1].sum()  # noqa: E731
    assert predicted_yes(low) > predicted_yes(high)


def test_multiclass_insights_for_many_classes() -> None:
    rng = np.random.default_rng(1)
    k, n = 12, 1200
    y = rng.integers(0, k, n)
    proba = rng.dirichlet(np.ones(k), n)
    proba[np.arange(n), y] += 1.0
    proba /= proba.sum(axis=1, keepdims=True)
    labels = [f"class-{i}" for i in range(k)]
    out = model_insights(ProblemType.MULTICLASS, y, proba, labels, None)
    m = out["multiclass"]
    assert np.array(m["confusion_matrix"]["matrix"]).shape == (k, k)
    assert [c["label"] for c in m["per_class"]] == labels
    assert sum(c["support"] for c in m["per_class"]) == n
    assert all(0 <= c["precision"] <= 1 and 0 <= c["recall"] <= 1 for c in m["per_class"])
    assert "LogLoss" in out["metrics"]


def test_regression_insights_list_large_standardized_residuals() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(100, 10, 800)
    pred = y + rng.normal(0, 1, 800)
    pred[[5, 17]] += [40, -45]  # two gross errors
    out = model_insights(ProblemType.REGRESSION, y, pred, None, None)
    r = out["regression"]
    rows = {o["row"] for o in r["standardized_residual_outliers"]}
    assert {5, 17} <= rows
    assert r["outlier_count"] == len(r["standardized_residual_outliers"])
    assert sum(r["residual_histogram"]["counts"]) == 800
    assert len(r["actual_vs_predicted"]["actual"]) == 800
    assert set(out["metrics"]) == {"MSE", "RMSE", "MAE", "R2"}


def _loop_draws(problem_type: ProblemType, y, pred, threshold, rounds: int, seed: int = 0):
    """The reference: each resample drawn and scored with scikit-learn, one by one."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(rounds):
        idx = rng.integers(0, len(y), len(y))
        for name, value in score_all(problem_type, y[idx], pred[idx], None, threshold).items():
            draws.setdefault(name, []).append(value)
    return {name: np.array(v) for name, v in draws.items()}


@pytest.mark.parametrize("n", [9, 40, 400])
def test_vectorised_bootstrap_equals_scoring_each_resample(n: int) -> None:
    rng = np.random.default_rng(n)
    y2 = rng.integers(0, 2, n)
    p = np.round(np.clip(0.3 + 0.4 * y2 + rng.normal(0, 0.25, n), 0.01, 0.99), 1)  # ties
    yk = rng.integers(0, 4, n)
    proba = rng.dirichlet(np.ones(4), n)
    proba[np.arange(n), yk] += 0.4
    proba /= proba.sum(axis=1, keepdims=True)
    yr = rng.normal(1e6, 3.0, n)  # a large mean: sums of squares must not cancel
    cases = [(ProblemType.BINARY, y2, np.column_stack([1 - p, p]), 0.45),
             (ProblemType.MULTICLASS, yk, proba, None),
             (ProblemType.REGRESSION, yr, yr + rng.normal(0, 1.0, n), None)]
    for problem_type, y, pred, threshold in cases:
        fast = resampled_metrics(problem_type, y, pred, threshold, rounds=60)
        slow = _loop_draws(problem_type, y, pred, threshold, rounds=60)
        assert set(fast) == set(slow)
        for name in slow:
            undefined = np.isnan(slow[name])  # e.g. AUC of a resample with one class
            assert np.array_equal(np.isnan(fast[name]), undefined), (problem_type, name)
            assert np.allclose(fast[name][~undefined], slow[name][~undefined], rtol=1e-9,
                               atol=1e-9), (problem_type, name)
