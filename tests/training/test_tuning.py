"""Hyperparameter tuning: the search on its own (ranges, scaling, strategies), requests
refused in one line, and (slow) a tuning job of XGBoost training jobs through boto3."""

from __future__ import annotations

import math

import pytest
from botocore.exceptions import ClientError
from traininglib import Served, training_request

from tabpilot.errors import ConfigError
from tabpilot.training.tuning import Range, Search, parse_ranges
from tabpilot.training.xgboost_builtin import HYPERPARAMETERS


def test_ranges_scaling_and_strategies() -> None:
    ranges = parse_ranges({
        "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "8"}],
        "ContinuousParameterRanges": [
            {"Name": "eta", "MinValue": "0.001", "MaxValue": "0.5",
             "ScalingType": "Logarithmic"},
            {"Name": "subsample", "MinValue": "0.5", "MaxValue": "0.999",
             "ScalingType": "ReverseLogarithmic"}],
        "CategoricalParameterRanges": [{"Name": "booster", "Values": ["gbtree", "dart"]}]},
        HYPERPARAMETERS, "xgboost")
    for strategy in ("Random", "Bayesian"):
        search = Search(strategy, ranges, maximize=True, seed=0)
        etas = []
        for _ in range(12):
            number, hp = search.ask()
            assert 2 <= int(hp["max_depth"]) <= 8
            assert 0.001 <= float(hp["eta"]) <= 0.5
            assert 0.5 <= float(hp["subsample"]) <= 0.999
            assert hp["booster"] in ("gbtree", "dart")
            etas.append(math.log10(float(hp["eta"])))
            search.tell(number, -abs(float(hp["eta"]) - 0.1))
        assert min(etas) < -1.5  # a log scale reaches the small values
    grid = Search("Grid", [Range("booster", "categorical", values=("gbtree", "dart")),
                           Range("objective", "categorical", values=("binary:logistic",
                                                                     "binary:hinge"))],
                  maximize=False)
    assert grid.size == 4
    assert len({tuple(sorted(grid.ask()[1].items())) for _ in range(4)}) == 4


@pytest.mark.parametrize(("ranges", "message"), [
    ({"IntegerParameterRanges": [{"Name": "max_dept", "MinValue": "1", "MaxValue": "3"}]},
     "xgboost has no hyperparameter 'max_dept'"),
    ({"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.5", "MaxValue": "0.1"}]},
     "MinValue 0.5 above MaxValue 0.1"),
    ({"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0", "MaxValue": "0.1",
                                     "ScalingType": "Logarithmic"}]}, "MinValue must be above 0"),
    ({}, "names no range to tune"),
])
def test_bad_ranges(ranges: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        parse_ranges(ranges, HYPERPARAMETERS, "xgboost")
    assert message in str(caught.value)


def tuning_request(name: str, strategy: str = "Random", jobs: int = 4, ranges: dict | None = None,
                   static: dict | None = None, objective: str = "validation:auc") -> dict:
    child = training_request("unused", static or {"num_round": "10", "nthread": "1",
                                                  "objective": "binary:logistic",
                                                  "eval_metric": "auc"})
    definition = {k: child[k] for k in ("AlgorithmSpecification", "RoleArn", "InputDataConfig",
                                        "OutputDataConfig", "ResourceConfig",
                                        "StoppingCondition")}
    definition["StaticHyperParameters"] = child["HyperParameters"]
    return dict(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig={
            "Strategy": strategy, "RandomSeed": 1,
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": objective},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": ranges or {
                "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "1",
                                            "MaxValue": "5"}],
                "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.05",
                                               "MaxValue": "0.5"}]}},
        TrainingJobDefinition=definition)


@pytest.mark.parametrize(("change", "message"), [
    ({"ranges": {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.1",
                                                "MaxValue": "2"}]}},
     "The 'eta' hyperparameter of xgboost must be a float in the range [0, 1]. Got '2.0'"),
    ({"strategy": "Hyperband", "ranges": {"IntegerParameterRanges": [
        {"Name": "num_round", "MinValue": "5", "MaxValue": "50"}]}},
     "Strategy Hyperband sets num_round itself"),
    ({"strategy": "Grid"}, "Strategy Grid takes categorical ranges only"),
    ({"objective": "auc"}, "name a built-in metric as <channel>:<metric>"),
    ({"static": {"num_round": "5", "eta": "0.1"}}, "eta is both a static and a tuned"),
])
def test_bad_tuning_requests(served: Served, change: dict, message: str) -> None:
    with pytest.raises(ClientError) as caught:
        served.client().create_hyper_parameter_tuning_job(**tuning_request("bad-tuning", **change))
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert message in caught.value.response["Error"]["Message"]


@pytest.mark.slow  # four training worker processes, two at a time
def test_tuning_job_finds_the_best_training_job(served: Served) -> None:
    import time

    sm = served.client()
    sm.create_hyper_parameter_tuning_job(**tuning_request("tune-xgb"))
    until = time.time() + 240
    while time.time() < until:
        described = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-xgb")
        if described["HyperParameterTuningJobStatus"] != "InProgress":
            break
        time.sleep(0.5)
    assert described["HyperParameterTuningJobStatus"] == "Completed", described.get(
        "FailureReason")
    assert described["TrainingJobStatusCounters"]["Completed"] == 4
    assert described["ObjectiveStatusCounters"]["Succeeded"] == 4
    listed = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="tune-xgb", SortBy="FinalObjectiveMetricValue",
        SortOrder="Descending")["TrainingJobSummaries"]
    assert len(listed) == 4
    best = described["BestTrainingJob"]
    assert best["TrainingJobName"] == listed[0]["TrainingJobName"]
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in listed]
    assert values == sorted(values, reverse=True)
    child = sm.describe_training_job(TrainingJobName=best["TrainingJobName"])
    assert child["HyperParameters"]["max_depth"] == best["TunedHyperParameters"]["max_depth"]
    assert child["TuningJobArn"] == described["HyperParameterTuningJobArn"]
    assert best["TrainingJobName"].startswith("tune-xgb-")
