"""Warm start: parents' training jobs told to a new study before it asks, WarmStartConfig
checked as SageMaker checks it, and (slow) a warm-started tuning job through boto3 with
its OverallBestTrainingJob."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from test_tuning import tuning_request
from test_tuning_hyperband import wait_tuning
from traininglib import Served

from tabpilot.training.tuning import Range, Search

RANGES = [Range("eta", "float", 0.05, 0.5, "Logarithmic"), Range("max_depth", "int", 1, 5),
          Range("subsample", "float", 0.5, 0.99, "ReverseLogarithmic"),
          Range("booster", "categorical", values=("gbtree", "dart"))]


def test_parents_are_told_before_the_study_asks() -> None:
    search = Search("Bayesian", RANGES, maximize=True, seed=0)
    done = [({"eta": "0.1", "max_depth": "3", "subsample": "0.9", "booster": "gbtree",
              "num_round": "10"}, 0.91),
            ({"eta": "0.3", "max_depth": "2", "subsample": "0.6", "booster": "dart"}, 0.85),
            ({"eta": "0.9", "max_depth": "2", "subsample": "0.6", "booster": "dart"}, 0.99),
            ({"eta": "0.1", "max_depth": "3", "subsample": "0.9"}, 0.97),
            ({"eta": "0.1", "max_depth": "3", "subsample": "0.9", "booster": "x"}, 0.97)]
    # outside the new eta range, a range missing, a value no longer listed: left out
    assert search.warm(done) == 2
    trials = search.study.trials
    assert [t.value for t in trials] == [0.91, 0.85]
    assert trials[0].params["subsample"] == pytest.approx(0.1)  # ReverseLogarithmic: 1 - x
    assert search.study.best_value == 0.91
    number, proposed = search.ask()
    assert number == 0 and set(proposed) == {"eta", "max_depth", "subsample", "booster"}
    search.tell(number, 0.5)
    assert len(search.study.trials) == 3


def test_tpe_learns_from_the_parents() -> None:
    """Six told jobs end TPE's random start-up: its proposals lean to the best one's
    region (0.9) more than a cold start's do, seed for seed."""
    ranges = [Range("eta", "float", 0.01, 1.0)]
    for seed in (1, 2):
        near = {}
        for label in ("cold", "warm"):
            search = Search("Bayesian", ranges, maximize=True, seed=seed)
            if label == "warm":
                search.warm([({"eta": repr(x)}, 1 - abs(x - 0.9))
                             for x in (0.05, 0.15, 0.25, 0.35, 0.45, 0.9)])
            etas = [float(search.ask()[1]["eta"]) for _ in range(8)]
            near[label] = sum(abs(e - 0.9) < 0.15 for e in etas)
        assert near["warm"] >= near["cold"] + 2, near


def _warm(name: str, parents: list[str], kind: str = "IdenticalDataAndAlgorithm",
          jobs: int = 2, **change) -> dict:
    request = tuning_request(name, jobs=jobs, **change)
    request["WarmStartConfig"] = {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": p}
                                           for p in parents], "WarmStartType": kind}
    return request


@pytest.mark.parametrize(("parents", "kind", "message"), [
    (["no-such-tuning"], "IdenticalDataAndAlgorithm",
     "parent tuning job no-such-tuning does not exist"),
    ([f"p{i}" for i in range(6)], "TransferLearning",
     "Member must have length less than or equal to 5"),  # the service model's own check
    (["x"], "Identical", "Member must satisfy enum value set"),
])
def test_bad_warm_starts(served: Served, parents: list[str], kind: str, message: str) -> None:
    with pytest.raises(ClientError) as caught:
        served.client().create_hyper_parameter_tuning_job(**_warm("bad-warm", parents, kind))
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert message in caught.value.response["Error"]["Message"]


@pytest.mark.slow  # a parent of four training jobs, then a warm-started child of two
def test_warm_started_tuning_job(served: Served) -> None:
    sm = served.client()
    sm.create_hyper_parameter_tuning_job(**tuning_request("warm-parent", jobs=4))
    with pytest.raises(ClientError) as caught:  # the parent has not ended yet
        sm.create_hyper_parameter_tuning_job(**_warm("warm-early", ["warm-parent"]))
    assert "parent tuning job warm-parent is InProgress" in \
        caught.value.response["Error"]["Message"]
    parent = wait_tuning(served, "warm-parent")
    assert parent["HyperParameterTuningJobStatus"] == "Completed"
    assert "OverallBestTrainingJob" not in parent  # only for an identical warm start

    refused = {
        "eta is a float range in parent warm-parent and a categorical range here":
            _warm("warm-types", ["warm-parent"], ranges={"CategoricalParameterRanges": [
                {"Name": "eta", "Values": ["0.1", "0.2"]}], "IntegerParameterRanges": [
                {"Name": "max_depth", "MinValue": "1", "MaxValue": "5"}]}),
        "gamma is set by this job only":
            _warm("warm-extra", ["warm-parent"], "TransferLearning", static={
                "num_round": "10", "nthread": "1", "objective": "binary:logistic",
                "eval_metric": "auc", "gamma": "1"}),
        "the objective metric must be the same":
            _warm("warm-metric", ["warm-parent"], objective="train:auc"),
    }
    for message, request in refused.items():
        with pytest.raises(ClientError) as caught:
            sm.create_hyper_parameter_tuning_job(**request)
        assert message in caught.value.response["Error"]["Message"]

    # max_depth moves from tuned to static: allowed, the set of names is the same
    sm.create_hyper_parameter_tuning_job(**_warm(
        "warm-child", ["warm-parent"], jobs=2, ranges={"ContinuousParameterRanges": [
            {"Name": "eta", "MinValue": "0.05", "MaxValue": "0.5"}]}, static={
            "num_round": "10", "nthread": "1", "objective": "binary:logistic",
            "eval_metric": "auc", "max_depth": "3"}))
    child = wait_tuning(served, "warm-child")
    assert child["HyperParameterTuningJobStatus"] == "Completed", child.get("FailureReason")
    assert child["WarmStartConfig"]["WarmStartType"] == "IdenticalDataAndAlgorithm"
    assert child["TrainingJobStatusCounters"]["Completed"] == 2  # its own jobs only
    log = (served.workspace / "logs" / "tuning-warm-child.log").read_text()
    assert "told the study 4 training jobs of its parents" in log
    values = [j["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
              for name in ("warm-parent", "warm-child")
              for j in sm.list_training_jobs_for_hyper_parameter_tuning_job(
                  HyperParameterTuningJobName=name)["TrainingJobSummaries"]]
    overall = child["OverallBestTrainingJob"]
    assert overall["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == max(values)
    assert overall["TrainingJobName"] in (parent["BestTrainingJob"]["TrainingJobName"],
                                          child["BestTrainingJob"]["TrainingJobName"])
    by_value = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="warm-child", SortBy="FinalObjectiveMetricValue",
        SortOrder="Descending")["TrainingJobSummaries"]
    assert by_value[0]["TrainingJobName"] == child["BestTrainingJob"]["TrainingJobName"]
