"""Debugger's built-in rules on training jobs (DebugRuleConfigurations), through boto3: a
job on a few noisy rows with deep trees overfits and its validation loss rises (Overfit
and LossNotDecreasing in EVAL mode report IssuesFound); a regularised job on the clean
table reports NoIssuesFound; a rule tabpilot cannot evaluate reports Error; a custom rule
image is refused."""

from __future__ import annotations

import numpy as np
import pytest
from botocore.exceptions import ClientError
from traininglib import Served, training_request, write_csv

RULES_IMAGE = "503895931360.dkr.ecr.us-east-1.amazonaws.com/sagemaker-debugger-rules:latest"


def rule(name: str, invoke: str | None = None, **parameters: str) -> dict:
    return {"RuleConfigurationName": name, "RuleEvaluatorImage": RULES_IMAGE,
            "RuleParameters": {"rule_to_invoke": invoke or name, **parameters}}


def noisy(n: int, seed: int) -> np.ndarray:
    """Label first; the label follows the first two features through heavy noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = ((X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=2.0, size=n)) > 0).astype(float)
    return np.column_stack([y, X])


def with_rules(name: str, hyperparameters: dict[str, str], rules: list[dict],
               channels: dict[str, str] | None = None) -> dict:
    request = training_request(name, {"objective": "binary:logistic",
                                      "eval_metric": "logloss", "nthread": "1",
                                      **hyperparameters}, channels=channels)
    return {**request, "DebugRuleConfigurations": rules,
            "DebugHookConfig": {"S3OutputPath": "s3://bucket/debug"}}


@pytest.fixture(scope="module")
def jobs(served: Served) -> dict[str, dict]:
    write_csv(served.s3_root / "bucket" / "noisy-train" / "part-0.csv", noisy(40, 0))
    write_csv(served.s3_root / "bucket" / "noisy-validation" / "part-0.csv", noisy(40, 1))
    sm = served.client()
    sm.create_training_job(**with_rules(
        "overfits", {"num_round": "40", "max_depth": "10", "eta": "0.5",
                     "min_child_weight": "0", "lambda": "0"},
        [rule("Overfit"), rule("ValidationLossNotDecreasing", "LossNotDecreasing",
                               mode="EVAL"), rule("VanishingGradient")],
        {"train": "s3://bucket/noisy-train/", "validation": "s3://bucket/noisy-validation/"}))
    early = sm.describe_training_job(TrainingJobName="overfits")
    sm.create_training_job(**with_rules(
        "sane", {"num_round": "20", "max_depth": "2", "eta": "0.1"},
        [rule("Overfit"), rule("LossNotDecreasing"), rule("Overtraining"),
         rule("ClassImbalance", threshold_imbalance="10")]))
    return {"early": early, "overfits": served.wait("overfits"), "sane": served.wait("sane")}


def statuses(described: dict) -> dict[str, tuple[str, str]]:
    return {r["RuleConfigurationName"]: (r["RuleEvaluationStatus"], r.get("StatusDetails", ""))
            for r in described["DebugRuleEvaluationStatuses"]}


def test_rules_are_in_progress_while_the_job_runs(jobs: dict) -> None:
    early = jobs["early"]
    if early["TrainingJobStatus"] == "InProgress":
        assert {s for s, _ in statuses(early).values()} == {"InProgress"}
    assert [r["RuleConfigurationName"] for r in early["DebugRuleConfigurations"]] == \
        ["Overfit", "ValidationLossNotDecreasing", "VanishingGradient"]


def test_an_overfitting_job_reports_issues(jobs: dict) -> None:
    described = jobs["overfits"]
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    found = statuses(described)
    assert found["Overfit"][0] == "IssuesFound", found["Overfit"]
    assert "validation logloss" in found["Overfit"][1]
    assert found["ValidationLossNotDecreasing"][0] == "IssuesFound", \
        found["ValidationLossNotDecreasing"]
    assert found["ValidationLossNotDecreasing"][1].startswith("validation logloss")
    assert found["VanishingGradient"][0] == "Error"
    assert "tensors" in found["VanishingGradient"][1]
    assert described["DebugHookConfig"]["S3OutputPath"] == "s3://bucket/debug"


def test_a_sane_job_reports_no_issues(jobs: dict) -> None:
    described = jobs["sane"]
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    found = statuses(described)
    assert {name: status for name, (status, _) in found.items()} == {
        "Overfit": "NoIssuesFound", "LossNotDecreasing": "NoIssuesFound",
        "Overtraining": "NoIssuesFound", "ClassImbalance": "NoIssuesFound"}, found
    assert "threshold 10" in found["ClassImbalance"][1]


def test_custom_rules_are_refused(served: Served) -> None:
    custom = {**rule("Mine"), "RuleEvaluatorImage":
              "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-rules:1"}
    with pytest.raises(ClientError, match="custom rule runs your code"):
        served.client().create_training_job(**with_rules("custom", {"num_round": "2"},
                                                         [custom]))
    with pytest.raises(ClientError, match="must be a number"):
        served.client().create_training_job(**with_rules(
            "bad-threshold", {"num_round": "2"}, [rule("Overfit", ratio_threshold="high")]))


SDK_SCRIPT = r'''
import json
import sagemaker
from sagemaker.debugger import Rule, rule_configs
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput

session = sagemaker.Session()
image = sagemaker.image_uris.retrieve("xgboost", session.boto_region_name, "1.7-1")
estimator = Estimator(image_uri=image, role="arn:aws:iam::123456789012:role/notebook",
                      instance_count=1, instance_type="ml.m5.xlarge",
                      output_path="s3://bucket/output", sagemaker_session=session,
                      hyperparameters={"num_round": 40, "max_depth": 10, "eta": 0.5,
                                       "min_child_weight": 0, "lambda": 0, "nthread": 1,
                                       "objective": "binary:logistic", "eval_metric": "logloss"},
                      rules=[Rule.sagemaker(rule_configs.overfit()),
                             Rule.sagemaker(rule_configs.loss_not_decreasing())])
estimator.fit({"train": TrainingInput("s3://bucket/noisy-train/", content_type="text/csv"),
               "validation": TrainingInput("s3://bucket/noisy-validation/",
                                           content_type="text/csv")}, logs=False)
summary = estimator.latest_training_job.rule_job_summary()
print("\nRESULT " + json.dumps({r["RuleConfigurationName"]: r["RuleEvaluationStatus"]
                                for r in summary}), flush=True)
'''


@pytest.mark.slow
def test_sdk_estimator_with_debugger_rules(tmp_path) -> None:
    """The getting-started notebook's `rules=[Rule.sagemaker(rule_configs...)]`."""
    from sdkserve import run_sdk, serving_s3_folder

    s3 = tmp_path / "s3"
    write_csv(s3 / "bucket" / "noisy-train" / "part-0.csv", noisy(40, 0))
    write_csv(s3 / "bucket" / "noisy-validation" / "part-0.csv", noisy(40, 1))
    with serving_s3_folder(tmp_path, s3) as url:
        result = run_sdk(SDK_SCRIPT, url, tmp_path, timeout=300)
    assert result == {"Overfit": "IssuesFound", "LossNotDecreasing": "NoIssuesFound"}
