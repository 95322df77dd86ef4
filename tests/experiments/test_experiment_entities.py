"""Experiments, trials and trial components through boto3 against a real server: every
operation's happy path (responses validated by the service model: TABPILOT_API_STRICT),
associations, List* filters and paging, the delete rules, and bad input as one line."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError


def _error(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def test_experiment_lifecycle(sm) -> None:
    arn = sm.create_experiment(ExperimentName="Churn-Study", Description="churn, XGBoost",
                               Tags=[{"Key": "team", "Value": "churn"}])["ExperimentArn"]
    assert arn == "arn:aws:sagemaker:local:000000000000:experiment/churn-study"
    described = sm.describe_experiment(ExperimentName="churn-study")  # names ignore case
    assert described["ExperimentName"] == "Churn-Study"
    assert described["DisplayName"] == "Churn-Study"
    assert described["Description"] == "churn, XGBoost"
    code, message = _error(sm.create_experiment, ExperimentName="CHURN-study")
    assert code == "ValidationException" and "already exists" in message  # the SDK's test
    sm.update_experiment(ExperimentName="Churn-Study", DisplayName="churn-v2",
                         Description="second pass")
    described = sm.describe_experiment(ExperimentName="Churn-Study")
    assert (described["DisplayName"], described["Description"]) == ("churn-v2", "second pass")
    assert described["LastModifiedTime"] >= described["CreationTime"]
    sm.delete_experiment(ExperimentName="Churn-Study")
    assert _error(sm.describe_experiment, ExperimentName="Churn-Study")[0] == "ResourceNotFound"


def test_trials_components_and_associations(sm) -> None:
    sm.create_experiment(ExperimentName="assoc")
    sm.create_trial(TrialName="assoc-t1", ExperimentName="assoc",
                    MetadataProperties={"CommitId": "abc123"})
    sm.create_trial(TrialName="assoc-t2", ExperimentName="assoc", DisplayName="second")
    started = time.time() - 60
    sm.create_trial_component(
        TrialComponentName="assoc-run", DisplayName="run-1",
        Status={"PrimaryStatus": "InProgress", "Message": "training"}, StartTime=started,
        Parameters={"max_depth": {"NumberValue": 5}, "booster": {"StringValue": "gbtree"}},
        InputArtifacts={"train": {"Value": "s3://bucket/train/", "MediaType": "text/csv"}})
    sm.associate_trial_component(TrialComponentName="assoc-run", TrialName="assoc-t1")
    sm.associate_trial_component(TrialComponentName="assoc-run", TrialName="assoc-t2")
    sm.associate_trial_component(TrialComponentName="assoc-run", TrialName="assoc-t2")  # no-op

    trial = sm.describe_trial(TrialName="assoc-t1")
    assert trial["ExperimentName"] == "assoc"
    assert trial["MetadataProperties"] == {"CommitId": "abc123"}
    listed = sm.list_trials(ExperimentName="assoc", SortBy="Name", SortOrder="Ascending")
    assert [t["TrialName"] for t in listed["TrialSummaries"]] == ["assoc-t1", "assoc-t2"]
    assert [t["TrialName"] for t in sm.list_trials(
        TrialComponentName="assoc-run")["TrialSummaries"]] == ["assoc-t2", "assoc-t1"]
    in_trial = sm.list_trial_components(TrialName="assoc-t2")["TrialComponentSummaries"]
    assert [c["TrialComponentName"] for c in in_trial] == ["assoc-run"]
    assert in_trial[0]["Status"]["PrimaryStatus"] == "InProgress"

    sm.update_trial_component(
        TrialComponentName="assoc-run", Status={"PrimaryStatus": "Completed"},
        EndTime=time.time(), Parameters={"eta": {"NumberValue": 0.3}},
        ParametersToRemove=["booster"],
        OutputArtifacts={"model": {"Value": "s3://bucket/model.tar.gz"}})
    component = sm.describe_trial_component(TrialComponentName="assoc-run")
    assert component["DisplayName"] == "run-1"
    assert component["Status"]["PrimaryStatus"] == "Completed"
    assert component["Parameters"] == {"max_depth": {"NumberValue": 5.0},
                                       "eta": {"NumberValue": 0.3}}
    assert component["InputArtifacts"]["train"]["MediaType"] == "text/csv"
    assert component["OutputArtifacts"]["model"]["Value"] == "s3://bucket/model.tar.gz"
    assert abs(component["StartTime"].timestamp() - started) < 1
    by_arn = sm.describe_trial_component(TrialComponentName=component["TrialComponentArn"])
    assert by_arn["TrialComponentName"] == "assoc-run"
    sm.update_trial(TrialName="assoc-t1", DisplayName="first")
    assert sm.describe_trial(TrialName="assoc-t1")["DisplayName"] == "first"

    # deleting is refused while something hangs below, in SageMaker's order
    assert _error(sm.delete_experiment, ExperimentName="assoc")[0] == "ResourceInUse"
    assert _error(sm.delete_trial, TrialName="assoc-t1")[0] == "ResourceInUse"
    assert _error(sm.delete_trial_component, TrialComponentName="assoc-run")[0] == "ResourceInUse"
    for trial_name in ("assoc-t1", "assoc-t2"):
        sm.disassociate_trial_component(TrialComponentName="assoc-run", TrialName=trial_name)
        sm.delete_trial(TrialName=trial_name)
    code, _ = _error(sm.disassociate_trial_component, TrialComponentName="assoc-run",
                     TrialName="assoc-t1")
    assert code == "ResourceNotFound"
    sm.delete_trial_component(TrialComponentName="assoc-run")
    sm.delete_experiment(ExperimentName="assoc")
    assert sm.list_trial_components(
        SourceArn="arn:aws:sagemaker:local:000000000000:training-job/none"
    )["TrialComponentSummaries"] == []


def test_lists_filter_and_page(sm) -> None:
    before = time.time()
    for i in range(5):
        sm.create_experiment(ExperimentName=f"paged-{i}")
    seen, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        answer = sm.list_experiments(MaxResults=2, CreatedAfter=before, SortBy="Name",
                                     SortOrder="Descending", **kwargs)
        seen += [e["ExperimentName"] for e in answer["ExperimentSummaries"]]
        token = answer.get("NextToken")
        if not token:
            break
    assert seen == [f"paged-{i}" for i in (4, 3, 2, 1, 0)]
    code, message = _error(sm.list_experiments, MaxResults=2, NextToken=token or "bogus")
    assert code == "ValidationException" and "pagination token" in message


@pytest.mark.parametrize("call, kwargs, code, words", [
    ("describe_experiment", {"ExperimentName": "never-made"}, "ResourceNotFound", "never-made"),
    ("create_trial", {"TrialName": "orphan", "ExperimentName": "never-made"},
     "ResourceNotFound", "never-made"),
    ("describe_trial_component", {"TrialComponentName": "never-made"}, "ResourceNotFound",
     "never-made"),
    ("associate_trial_component", {"TrialComponentName": "never-made", "TrialName": "x"},
     "ResourceNotFound", "never-made"),
    ("create_experiment", {"ExperimentName": "bad_name"}, "ValidationException",
     "regular expression"),
    ("create_trial_component", {"TrialComponentName": "both-values", "Parameters": {
        "p": {"StringValue": "a", "NumberValue": 1}}}, "ValidationException", "exactly one"),
    ("list_trial_components", {"ExperimentName": "a", "TrialName": "b"},
     "ValidationException", "at most one"),
])
def test_bad_input_is_one_line(sm, call, kwargs, code, words) -> None:
    got, message = _error(getattr(sm, call), **kwargs)
    assert got == code and words in message and "\n" not in message


def test_update_refuses_a_key_both_set_and_removed(sm) -> None:
    sm.create_trial_component(TrialComponentName="both-ways")
    code, message = _error(sm.update_trial_component, TrialComponentName="both-ways",
                           Parameters={"a": {"NumberValue": 1}}, ParametersToRemove=["a"])
    assert code == "ValidationException" and "ParametersToRemove" in message
