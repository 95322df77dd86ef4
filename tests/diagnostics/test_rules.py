"""The Debugger-style rules as pure functions of numbers, each both ways."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tabpilot.diagnostics import rules
from tabpilot.diagnostics.candidate import diagnose_importance, diagnose_trial, take_curves
from tabpilot.diagnostics.files import CURVES, RULES, read_curves, read_rules


def _curves(train, validation, best=None, higher=False, metric="logloss") -> dict:
    return {"metric": metric, "higher_is_better": higher, "best_iteration": best,
            "train": list(map(float, train)), "validation": list(map(float, validation))}


def _decay(start: float, end: float, n: int, rate: float = 0.05) -> np.ndarray:
    return end + (start - end) * np.exp(-rate * np.arange(n))


def _status(result: dict | None) -> str:
    assert result is not None
    assert set(result) == {"RuleConfigurationName", "RuleEvaluationStatus", "StatusDetails"}
    return result["RuleEvaluationStatus"]


# -- Overfit -----------------------------------------------------------------------------

def test_overfit_found_when_validation_keeps_little_of_the_training_gain() -> None:
    train = _decay(0.69, 0.05, 200)  # training loss falls far
    valid = np.minimum(_decay(0.69, 0.55, 200), 0.60)  # validation barely moves
    found = rules.overfit(_curves(train, valid))
    assert _status(found) == "IssuesFound"
    assert "threshold 50%" in found["StatusDetails"]


def test_overfit_not_found_when_validation_follows_training() -> None:
    train = _decay(0.69, 0.30, 200)
    valid = _decay(0.69, 0.32, 200)
    found = rules.overfit(_curves(train, valid))
    assert _status(found) == "NoIssuesFound"
    assert "best round 200" in found["StatusDetails"]


def test_overfit_ignores_a_small_gap_on_a_table_with_little_to_learn() -> None:
    # pure noise: most of the (tiny) training gain is lost, but the gap is 1 % of the loss
    train = np.linspace(0.693, 0.685, 50)
    valid = np.full(50, 0.692)
    assert _status(rules.overfit(_curves(train, valid, best=50))) == "NoIssuesFound"


def test_overfit_reads_the_best_round_and_metrics_where_higher_is_better() -> None:
    # accuracy-like curves: validation peaks at round 10 while training climbs on
    train = np.linspace(0.5, 1.0, 100)
    valid = np.concatenate([np.linspace(0.5, 0.9, 10), np.full(90, 0.6)])
    found = rules.overfit(_curves(train, valid, best=10, higher=True, metric="accuracy"))
    assert "best round 10: validation accuracy 0.9, training 0.54545" in found["StatusDetails"]
    # at round 10: training 0.545, validation 0.9: validation is better, no overfit
    assert _status(found) == "NoIssuesFound"
    late = rules.overfit(_curves(train, valid, best=100, higher=True))
    assert _status(late) == "IssuesFound"


def test_overfit_needs_a_validation_curve() -> None:
    assert rules.overfit(_curves(_decay(1, 0, 50), [])) is None


# -- Overtraining ------------------------------------------------------------------------

def test_overtraining_found_when_training_ran_long_past_the_best() -> None:
    valid = np.concatenate([_decay(0.7, 0.4, 50), np.linspace(0.43, 0.45, 400)])
    found = rules.overtraining(_curves(_decay(0.7, 0.1, 450), valid))
    assert _status(found) == "IssuesFound"
    assert "400 rounds trained after the validation best at round 50" in found["StatusDetails"]


def test_overtraining_not_found_after_ordinary_early_stopping() -> None:
    # the best at 300, then the 100 rounds of patience
    valid = np.concatenate([_decay(0.7, 0.4, 300, 0.01), np.full(100, 0.41)])
    found = rules.overtraining(_curves(_decay(0.7, 0.1, 400), valid))
    assert _status(found) == "NoIssuesFound"


# -- LossNotDecreasing -------------------------------------------------------------------

def test_loss_not_decreasing_found_for_a_flat_or_rising_start() -> None:
    flat = rules.loss_not_decreasing(_curves(np.full(30, 0.693), []))
    rising = rules.loss_not_decreasing(_curves(np.linspace(0.6, 0.9, 30), []))
    assert _status(flat) == "IssuesFound" and _status(rising) == "IssuesFound"


def test_loss_not_decreasing_not_found_when_training_learns() -> None:
    found = rules.loss_not_decreasing(_curves(_decay(0.69, 0.2, 30), []))
    assert _status(found) == "NoIssuesFound"
    assert rules.loss_not_decreasing(_curves([0.5], [])) is None  # one round decides nothing


# -- ClassImbalance ----------------------------------------------------------------------

def test_class_imbalance_found_below_one_minority_row_in_ten() -> None:
    found = rules.class_imbalance([950, 50], ["no", "yes"])
    assert _status(found) == "IssuesFound"
    assert "smallest yes 50" in found["StatusDetails"]
    assert _status(rules.class_imbalance([100, 0, 40])) == "IssuesFound"  # a class unseen


def test_class_imbalance_not_found_for_balanced_classes() -> None:
    assert _status(rules.class_imbalance([400, 300, 100])) == "NoIssuesFound"
    assert rules.class_imbalance([10]) is None


# -- FeatureImportanceOverweight ---------------------------------------------------------

def _importance(values) -> list[dict]:
    return [{"feature": f"x{i}", "value": v} for i, v in enumerate(values)]


def test_importance_overweight_found_when_one_column_knows_the_answer() -> None:
    found = rules.feature_importance_overweight(_importance([0.01, 0.9, 0.02, 0.01, 0.01]))
    assert _status(found) == "IssuesFound"
    assert "(x1, x2, x0)" in found["StatusDetails"]


def test_importance_overweight_not_found_for_spread_importance() -> None:
    spread = _importance([0.2, 0.15, 0.1, 0.1, 0.1, 0.1, 0.1, -0.05])
    assert _status(rules.feature_importance_overweight(spread)) == "NoIssuesFound"
    assert rules.feature_importance_overweight(_importance([1.0, 0.5, 0.2])) is None


# -- files -------------------------------------------------------------------------------

def test_trial_and_report_results_land_in_one_rules_file(tmp_path) -> None:
    curves = _curves(_decay(0.69, 0.05, 100), np.minimum(_decay(0.69, 0.55, 100), 0.6))
    infos = [{"seconds": 1.0, "curves": curves}, {"seconds": 1.0, "curves": None}]
    kept = take_curves(infos)
    assert kept == curves and all("curves" not in i for i in infos)
    labels = np.array([0] * 95 + [1] * 5)
    diagnose_trial(tmp_path, kept, labels, 2, ["a", "b"])
    assert read_curves(tmp_path) == curves
    assert [r["RuleConfigurationName"] for r in read_rules(tmp_path)] == \
        ["Overfit", "Overtraining", "LossNotDecreasing", "ClassImbalance"]
    every = diagnose_importance(tmp_path, _importance([0.9, 0.01, 0.01, 0.01, 0.01]))
    assert [r["RuleEvaluationStatus"] for r in every] == \
        ["IssuesFound", "NoIssuesFound", "NoIssuesFound", "IssuesFound", "IssuesFound"]
    assert json.loads((tmp_path / RULES).read_text()) == every
    # a rerun of a family without curves: the old curves go, the rules are decided again
    diagnose_trial(tmp_path, None, None, 0)
    assert not (tmp_path / CURVES).exists() and read_rules(tmp_path) == []


@pytest.mark.parametrize("rule", [rules.overfit, rules.overtraining, rules.loss_not_decreasing])
def test_curve_rules_skip_empty_curves(rule) -> None:
    assert rule(_curves([], [])) is None
