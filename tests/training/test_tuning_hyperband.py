"""Early stopping of a tuning job's training jobs: Hyperband's successive halving and the
median rule (TrainingJobEarlyStoppingType Auto), decided in the training job at each round
on the study the tuning worker keeps in a journal file; requests refused in one line; and
(slow) Hyperband tuning jobs of real XGBoost training jobs through boto3."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from test_tuning import tuning_request
from traininglib import Served

from tabpilot.errors import ConfigError
from tabpilot.training.base import Control
from tabpilot.training.progress import Judge
from tabpilot.training.tuning import Range, Search, Stopping, stopping

RANGES = [Range("eta", "float", 0.01, 0.5), Range("max_depth", "int", 1, 6)]


def _train(search: Search, level: float, rounds: int) -> int:
    """One proposal 'trained' for up to `rounds` rounds at a constant objective `level`,
    through the same Control and Judge a training job uses; the rounds it trained."""
    number, _ = search.ask()
    control = Control(judge=Judge(search.live(number, "validation:auc")))
    trained = 0
    for i in range(rounds):
        control.record(i, {"train:auc": level + 0.01, "validation:auc": level})
        trained = i + 1
        if control.should_stop():
            break
    search.tell(number, level, stopped_early=control.stopped_by is not None)
    return trained


def test_hyperband_stops_the_worse_jobs_at_their_rungs(tmp_path: Path) -> None:
    search = Search("Hyperband", RANGES, maximize=True, seed=0,
                    early=Stopping("hyperband", 1, 27), journal=tmp_path / "study.journal",
                    name="hb")
    # each job worse than every earlier one: in its bracket, only the first goes on
    trained = [_train(search, 0.9 - 0.05 * k, 27) for k in range(8)]
    assert trained[0] == 27
    stopped = [t for t in trained if t < 27]
    assert len(stopped) >= 3, trained
    assert all(t in (1, 3, 9) for t in stopped), trained  # rungs: MinResource x 3^k
    pruned = [t for t in search.study.trials if t.state.name == "PRUNED"]
    assert len(pruned) == len(stopped)
    # a better job goes on to MaxResource, whatever its bracket
    assert _train(search, 0.99, 27) == 27


def test_median_rule_waits_for_three_jobs_then_stops_the_worse(tmp_path: Path) -> None:
    search = Search("Random", RANGES, maximize=True, seed=0, early=Stopping("median"),
                    journal=tmp_path / "study.journal", name="median")
    assert _train(search, 0.80, 10) == 10
    assert _train(search, 0.50, 10) == 10  # too few completed jobs to judge
    assert _train(search, 0.85, 10) == 10
    assert _train(search, 0.60, 10) == 1  # below the median (0.80) of three completed jobs
    assert _train(search, 0.82, 10) == 10
    assert _train(search, 0.805, 10) == 1  # below the median of 0.5, 0.8, 0.82, 0.85
    states = [t.state.name for t in search.study.trials]
    assert states == ["COMPLETE"] * 3 + ["PRUNED", "COMPLETE", "PRUNED"]


def test_without_early_stopping_nothing_is_live(tmp_path: Path) -> None:
    search = Search("Bayesian", RANGES, maximize=True, seed=0,
                    journal=tmp_path / "study.journal", name="off")
    number, _ = search.ask()
    assert search.live(number, "validation:auc") is None


@pytest.mark.parametrize(("args", "message"), [
    (("Hyperband", "Auto", None, ("num_round", 50)), "set TrainingJobEarlyStoppingType to Off"),
    (("Hyperband", "Off", None, ("num_round", None)), "give HyperbandStrategyConfig.MaxResource"),
    (("Hyperband", "Off", {"MinResource": 60, "MaxResource": 50}, ("num_round", 50)),
     "MinResource 60 must be between 1 and MaxResource 50"),
    (("Hyperband", "Off", None, None), "an algorithm trained in rounds or epochs"),
    (("Bayesian", "Off", {"MaxResource": 5}, ("num_round", 5)), "is for Strategy Hyperband"),
    (("Random", "Sometimes", None, None), "TrainingJobEarlyStoppingType is Off or Auto"),
])
def test_bad_early_stopping(args: tuple, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        stopping(*args)
    assert message in str(caught.value)


def test_hyperband_resource_from_the_request() -> None:
    assert stopping("Hyperband", "Off", {"MinResource": 2}, ("num_round", 40)) == \
        Stopping("hyperband", 2, 40)
    assert stopping("Random", "Auto", None, ("num_round", 40)).kind == "median"


def test_hyperband_request_refused_with_auto(served: Served) -> None:
    request = tuning_request("bad-hyperband", strategy="Hyperband")
    request["HyperParameterTuningJobConfig"]["TrainingJobEarlyStoppingType"] = "Auto"
    with pytest.raises(ClientError) as caught:
        served.client().create_hyper_parameter_tuning_job(**request)
    assert "set TrainingJobEarlyStoppingType to Off" in caught.value.response["Error"]["Message"]


def wait_tuning(served: Served, name: str, seconds: float = 300) -> dict:
    sm = served.client()
    until = time.time() + seconds
    while time.time() < until:
        described = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        if described["HyperParameterTuningJobStatus"] not in ("InProgress", "Stopping"):
            return described
        time.sleep(0.5)
    log = served.workspace / "logs" / f"tuning-{name}.log"
    raise AssertionError(f"{name} still running: {log.read_text()[-2000:]}")


@pytest.mark.slow  # six training worker processes, one at a time (a deterministic order)
def test_hyperband_tuning_job_stops_jobs_early(served: Served) -> None:
    sm = served.client()
    request = tuning_request("tune-hyperband", strategy="Hyperband", jobs=6, static={
        "num_round": "10", "nthread": "1", "objective": "binary:logistic",
        "eval_metric": "auc"})
    config = request["HyperParameterTuningJobConfig"]
    config["ResourceLimits"]["MaxParallelTrainingJobs"] = 1
    config["StrategyConfig"] = {"HyperbandStrategyConfig": {"MinResource": 1,
                                                            "MaxResource": 27}}
    config["TrainingJobEarlyStoppingType"] = "Off"
    sm.create_hyper_parameter_tuning_job(**request)
    described = wait_tuning(served, "tune-hyperband")
    assert described["HyperParameterTuningJobStatus"] == "Completed", described.get(
        "FailureReason")
    assert described["HyperParameterTuningJobConfig"]["StrategyConfig"][
        "HyperbandStrategyConfig"]["MaxResource"] == 27
    counters = described["TrainingJobStatusCounters"]
    assert counters["Completed"] + counters["Stopped"] == 6
    assert described["ObjectiveStatusCounters"]["Succeeded"] == 6
    jobs = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="tune-hyperband", MaxResults=100)["TrainingJobSummaries"]
    assert [j["TrainingJobName"] for j in jobs] == sorted(j["TrainingJobName"] for j in jobs)
    rounds = {}
    for job in jobs:
        child = sm.describe_training_job(TrainingJobName=job["TrainingJobName"])
        assert child["HyperParameters"]["num_round"] == "27"  # MaxResource, not the static 10
        log = (served.workspace / "logs" / f"training-{job['TrainingJobName']}.log").read_text()
        rounds[job["TrainingJobName"]] = (job["TrainingJobStatus"],
                                          "stopped early by the tuning job" in log)
    # Stopped exactly when the job itself was told to stop at a rung; one at least is, as
    # seeded proposals trained one at a time give the same objectives each run
    assert counters["Stopped"] >= 1, rounds
    assert all((status == "Stopped") == early for status, early in rounds.values()), rounds
    stopped = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="tune-hyperband", StatusEquals="Stopped")
    assert len(stopped["TrainingJobSummaries"]) == counters["Stopped"]
    assert described["BestTrainingJob"]["TrainingJobStatus"] in ("Completed", "Stopped")
