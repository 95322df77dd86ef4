"""CreateAutoMLJobV2 with a TextClassificationJobConfig: refused with one line when it
asks what text jobs do not do, and described in the shape it was asked in."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).parent.parent / "api"))
from apilib import KEY_ID, ROLE, SECRET, Api, start_api  # noqa: E402


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory):
    server, root, workspace = start_api(tmp_path_factory.mktemp("text-api"), {KEY_ID: SECRET})
    yield Api(server, root, workspace)
    server.__exit__()


def text_request(name: str, content: str, metric: str | None = None) -> dict:
    request = dict(
        AutoMLJobName=name,
        AutoMLJobInputDataConfig=[{
            "ChannelType": "training", "ContentType": "text/csv;header=present",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                            "S3Uri": "s3://bucket/input/"}}}],
        OutputDataConfig={"S3OutputPath": "s3://bucket/output"},
        AutoMLProblemTypeConfig={"TextClassificationJobConfig": {
            "ContentColumn": content, "TargetLabelColumn": "churn",
            "CompletionCriteria": {"MaxAutoMLJobRuntimeInSeconds": 30}}},
        RoleArn=ROLE)
    if metric:
        request["AutoMLJobObjective"] = {"MetricName": metric}
    return request


def test_an_objective_other_than_accuracy_is_refused(api: Api) -> None:
    sm = api.client()
    with pytest.raises(ClientError) as err:
        sm.create_auto_ml_job_v2(**text_request("text-f1", "plan", metric="F1"))
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert "Accuracy" in err.value.response["Error"]["Message"]
    assert sm.list_auto_ml_jobs(NameContains="text-f1")["AutoMLJobSummaries"] == []


def test_a_text_job_is_described_as_it_was_asked(api: Api) -> None:
    sm = api.client()
    # the churn table's `tenure` holds numbers: the job starts, then fails with one line
    sm.create_auto_ml_job_v2(**text_request("text-numbers", "tenure"))
    described = sm.describe_auto_ml_job_v2(AutoMLJobName="text-numbers")
    assert described["AutoMLProblemTypeConfigName"] == "TextClassification"
    assert described["AutoMLProblemTypeConfig"] == {"TextClassificationJobConfig": {
        "ContentColumn": "tenure", "TargetLabelColumn": "churn",
        "CompletionCriteria": {"MaxAutoMLJobRuntimeInSeconds": 30}}}
    with pytest.raises(ClientError, match="DescribeAutoMLJobV2"):
        sm.describe_auto_ml_job(AutoMLJobName="text-numbers")


@pytest.mark.slow  # waits for a worker process (seconds on a busy machine)
def test_a_text_job_on_a_column_of_numbers_fails_with_one_line(api: Api) -> None:
    sm = api.client()
    sm.create_auto_ml_job_v2(**text_request("text-fails", "tenure"))
    described = sm.describe_auto_ml_job_v2(AutoMLJobName="text-fails")
    deadline = time.monotonic() + 120
    while described["AutoMLJobStatus"] == "InProgress" and time.monotonic() < deadline:
        time.sleep(0.5)
        described = sm.describe_auto_ml_job_v2(AutoMLJobName="text-fails")
    assert described["AutoMLJobStatus"] == "Failed"
    assert "text column 'tenure' holds numbers" in described["FailureReason"]
