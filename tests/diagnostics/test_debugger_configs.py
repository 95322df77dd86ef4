"""A training job's DebugRuleConfigurations evaluated on a built-in's curves
(diagnostics/debugger.py): which curve, Debugger's parameters, Error for what cannot be
decided."""

from __future__ import annotations

import pytest

from tabpilot.diagnostics import debugger

IMAGE = "503895931360.dkr.ecr.us-east-1.amazonaws.com/sagemaker-debugger-rules:latest"


def config(name: str, **parameters: str) -> dict:
    return {"RuleConfigurationName": f"my-{name}", "RuleEvaluatorImage": IMAGE,
            "RuleParameters": {"rule_to_invoke": name, **parameters}}


def test_the_early_stopping_metric_is_the_curve_and_auc_reads_negated() -> None:
    curves = {"train:logloss": [0.6, 0.5], "validation:logloss": [0.6, 0.55],
              "train:auc": [0.8, 0.9], "validation:auc": [0.7, 0.75]}
    learned = debugger.learning_curves(curves)
    assert learned == {"metric": "auc", "higher_is_better": True, "train": [0.8, 0.9],
                       "validation": [0.7, 0.75]}
    assert debugger.learning_curves({"train:rmse": [2.0, 1.0]})["validation"] == []
    assert debugger.learning_curves({"test:msd": [1.0]}) is None


def test_parameters_change_the_thresholds() -> None:
    curves = {"train:logloss": [0.70, 0.69, 0.68], "validation:logloss": [0.70, 0.69, 0.68]}
    strict, lax = debugger.evaluate([config("LossNotDecreasing", diff_percent="5"),
                                     config("LossNotDecreasing", diff_percent="1")], curves)
    assert strict["RuleEvaluationStatus"] == "IssuesFound"  # fell 2.9 %, needs 5 %
    assert lax["RuleEvaluationStatus"] == "NoIssuesFound"
    assert strict["RuleConfigurationName"] == "my-LossNotDecreasing"
    counts = {"0": 90, "1": 10}
    found = debugger.evaluate([config("ClassImbalance"),
                               config("ClassImbalance", threshold_imbalance="5")], {}, counts)
    assert [r["RuleEvaluationStatus"] for r in found] == ["NoIssuesFound", "IssuesFound"]


def test_what_cannot_be_decided_is_an_error_with_the_reason() -> None:
    found = debugger.evaluate([config("Overfit"), config("VanishingGradient"),
                               config("FeatureImportanceOverweight")],
                              {"train:rmse": [2.0, 1.0, 0.5]})
    assert [r["RuleEvaluationStatus"] for r in found] == ["Error"] * 3
    assert "validation channel" in found[0]["StatusDetails"]
    assert "tensors" in found[1]["StatusDetails"]


def test_custom_rules_and_bad_thresholds_are_refused() -> None:
    with pytest.raises(debugger.RuleConfigError, match="custom rule"):
        debugger.check([{**config("Overfit"), "RuleEvaluatorImage": "me/my-rules:1"}])
    with pytest.raises(debugger.RuleConfigError, match="must be a number"):
        debugger.check([config("Overfit", ratio_threshold="x")])
