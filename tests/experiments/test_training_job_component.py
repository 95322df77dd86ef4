"""A training job's trial component, `<job>-aws-training-job`: created with the job,
associated as its ExperimentConfig says, and once the (tiny, real) job ends reporting its
status, hyperparameters as parameters, channels and model as artifacts, and its curves as
metric summaries; Search over training jobs; a bad ExperimentConfig refused before any job."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from traininglib import training_request

from tabpilot.api import experiment_jobs
from tabpilot.api.context import ApiContext
from tabpilot.api.locations import Locations
from tabpilot.store import Store

HYPERPARAMETERS = {"num_round": "6", "max_depth": "3", "eta": "0.3", "nthread": "1",
                   "objective": "binary:logistic", "eval_metric": "auc"}


@pytest.fixture(scope="module")
def jobs(sm, served) -> dict[str, dict]:
    sm.create_experiment(ExperimentName="fit-exp")
    sm.create_trial(TrialName="fit-trial", ExperimentName="fit-exp")
    sm.create_training_job(**training_request("fit-in-trial", HYPERPARAMETERS), ExperimentConfig={
        "ExperimentName": "fit-exp", "TrialName": "fit-trial",
        "TrialComponentDisplayName": "xgb-depth-3"})
    return {"fit-in-trial": served.wait("fit-in-trial")}


def test_the_component_joins_its_trial(sm, jobs) -> None:
    listed = sm.list_trial_components(TrialName="fit-trial")["TrialComponentSummaries"]
    assert [c["TrialComponentName"] for c in listed] == ["fit-in-trial-aws-training-job"]
    assert listed[0]["TrialComponentSource"] == {
        "SourceArn": jobs["fit-in-trial"]["TrainingJobArn"], "SourceType": "SageMakerTrainingJob"}


def test_a_job_naming_only_its_experiment_gets_a_trial_of_its_own(sm, served, jobs) -> None:
    """CreateTrainingJob's hook itself (a second real job would only repeat the worker)."""
    ctx = ApiContext(Store.for_workspace(served.workspace), served.workspace,
                     Locations(served.workspace, served.s3_root))
    experiment_jobs.record_training_job(ctx, "fit-exp-only", {"ExperimentName": "fit-exp"})
    trial = sm.describe_trial(TrialName="fit-exp-only-aws-training-job")
    assert trial["ExperimentName"] == "fit-exp"
    in_experiment = sm.list_trial_components(ExperimentName="fit-exp")["TrialComponentSummaries"]
    assert sorted(c["TrialComponentName"] for c in in_experiment) == [
        "fit-exp-only-aws-training-job", "fit-in-trial-aws-training-job"]


def test_the_component_reports_the_job(sm, jobs) -> None:
    job = jobs["fit-in-trial"]
    assert job["TrainingJobStatus"] == "Completed"
    component = sm.describe_trial_component(TrialComponentName="fit-in-trial-aws-training-job")
    assert component["DisplayName"] == "xgb-depth-3"
    assert component["Status"]["PrimaryStatus"] == "Completed"
    assert component["Parameters"]["max_depth"] == {"NumberValue": 3.0}
    assert component["Parameters"]["objective"] == {"StringValue": "binary:logistic"}
    assert component["Parameters"]["SageMaker.InstanceType"] == {"StringValue": "ml.m5.xlarge"}
    assert component["InputArtifacts"]["train"] == {"Value": "s3://bucket/train/",
                                                    "MediaType": "text/csv"}
    assert component["OutputArtifacts"]["SageMaker.ModelArtifact"]["Value"] == \
        job["ModelArtifacts"]["S3ModelArtifacts"]
    final = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    summaries = {m["MetricName"]: m for m in component["Metrics"]}
    auc = summaries["validation:auc"]
    assert auc["Count"] == 6 and auc["Last"] == pytest.approx(final["validation:auc"])
    assert auc["Min"] <= auc["Avg"] <= auc["Max"]
    assert component["StartTime"] <= component["EndTime"]


def test_search_training_jobs_and_their_components(sm, jobs) -> None:
    found = sm.search(Resource="TrainingJob", SearchExpression={"Filters": [
        {"Name": "HyperParameters.max_depth", "Operator": "Equals", "Value": "3"},
        {"Name": "Metrics.validation:auc", "Operator": "GreaterThan", "Value": "0.5"},
        {"Name": "TrainingJobName", "Operator": "Contains", "Value": "fit-"}]},
        SortBy="TrainingJobName", SortOrder="Ascending")["Results"]
    assert [r["TrainingJob"]["TrainingJobName"] for r in found] == ["fit-in-trial"]
    components = sm.search(Resource="ExperimentTrialComponent", SearchExpression={"Filters": [
        {"Name": "Source.SourceArn", "Operator": "Equals",
         "Value": jobs["fit-in-trial"]["TrainingJobArn"]}]})["Results"]
    detail = components[0]["TrialComponent"]["SourceDetail"]["TrainingJob"]
    assert detail["TrainingJobName"] == "fit-in-trial"


@pytest.mark.parametrize("config, code, words", [
    ({"ExperimentName": "no-such-experiment"}, "ResourceNotFound", "no-such-experiment"),
    ({"TrialName": "no-such-trial"}, "ResourceNotFound", "no-such-trial"),
])
def test_a_bad_experiment_config_creates_no_job(sm, jobs, config, code, words) -> None:
    with pytest.raises(ClientError) as caught:
        sm.create_training_job(**training_request("never-started", HYPERPARAMETERS),
                               ExperimentConfig=config)
    assert caught.value.response["Error"]["Code"] == code
    assert words in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        sm.describe_training_job(TrainingJobName="never-started")


def test_a_trial_of_another_experiment_is_refused(sm, jobs) -> None:
    sm.create_experiment(ExperimentName="fit-elsewhere")
    with pytest.raises(ClientError) as caught:
        sm.create_training_job(**training_request("never-started", HYPERPARAMETERS),
                               ExperimentConfig={"ExperimentName": "fit-elsewhere",
                                                 "TrialName": "fit-trial"})
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "belongs to experiment 'fit-exp'" in caught.value.response["Error"]["Message"]


def test_the_studio_draws_the_jobs_curve(served, jobs) -> None:
    """The experiment page's data for a training job's run: its hyperparameters, its final
    metric, and its per-iteration curve as the chart's series."""
    from tabpilot.ui import pages_experiments

    ctx = ApiContext(Store.for_workspace(served.workspace), served.workspace,
                     Locations(served.workspace, served.s3_root))
    detail = pages_experiments.detail(ctx, "fit-exp")
    run = next(r for r in detail["runs"] if r["name"] == "fit-in-trial-aws-training-job")
    assert run["parameters"]["max_depth"] == 3.0 and run["status"] == "Completed"
    assert "SageMaker.InstanceType" not in run["parameters"]
    final = {m["MetricName"]: m["Value"] for m in jobs["fit-in-trial"]["FinalMetricDataList"]}
    assert run["metrics"]["validation:auc"]["Last"] == pytest.approx(final["validation:auc"])
    chart = pages_experiments.chart(ctx, "fit-exp", "validation:auc")
    assert chart["x"] == [0, 1, 2, 3, 4, 5]
    assert chart["series"][0]["label"] == "xgb-depth-3"
    assert chart["series"][0]["y"][-1] == pytest.approx(final["validation:auc"])
