"""Error paths in AWS's shapes, request validation from the service model, signature checks,
and the List operations' filters, sorting and pagination."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from apilib import ROLE, job_request, start_api
from botocore.exceptions import ClientError
from servinglib import wait_until  # noqa: E402  (apilib puts it on the path)

from tabpilot.store import Store


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def test_unknown_job_is_resource_not_found(api) -> None:
    sm = api.client()
    for call in (lambda: sm.describe_auto_ml_job_v2(AutoMLJobName="nope"),
                 lambda: sm.describe_auto_ml_job(AutoMLJobName="nope"),
                 lambda: sm.list_candidates_for_auto_ml_job(AutoMLJobName="nope"),
                 lambda: sm.stop_auto_ml_job(AutoMLJobName="nope")):
        with pytest.raises(ClientError) as exc:
            call()
        assert code(exc) == "ResourceNotFound"
        assert "nope" in exc.value.response["Error"]["Message"]


def test_duplicate_job_name_is_resource_in_use(api) -> None:
    Store.for_workspace(api.workspace).create_job(
        name="taken", status="Completed", secondary_status="Completed", target="churn",
        input_uri="x.csv", request={}, job_dir=str(api.workspace / "jobs" / "taken"))
    with pytest.raises(ClientError) as exc:
        api.client().create_auto_ml_job_v2(**job_request("taken"))
    assert code(exc) == "ResourceInUse"


def test_invalid_enum_and_missing_member_are_validation_errors(api) -> None:
    sm = api.client()
    bad = job_request("badenum")
    bad["AutoMLProblemTypeConfig"]["TabularJobConfig"]["ProblemType"] = "Clustering"
    with pytest.raises(ClientError) as exc:
        sm.create_auto_ml_job_v2(**bad)  # botocore does not check enums: the server must
    assert code(exc) == "ValidationException"
    assert "Clustering" in str(exc.value) and "BinaryClassification" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        sm.list_auto_ml_jobs(SortBy="Size")
    assert code(exc) == "ValidationException"
    r = httpx.post(api.url + "/", content="{}", headers={
        "X-Amz-Target": "SageMaker.ListAutoMLJobs",
        "Content-Type": "application/x-amz-json-1.1", "Authorization": "AWS4-HMAC-SHA256 x"})
    assert r.status_code == 403 and r.json()["__type"] == "IncompleteSignatureException"
    with pytest.raises(ClientError) as exc:
        sm.create_auto_ml_job_v2(**{**job_request("nodata"), "AutoMLJobInputDataConfig": [{
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                            "S3Uri": "s3://bucket/missing/"}}}]})
    assert code(exc) == "ValidationException" and "missing" in str(exc.value)
    assert not Store.for_workspace(api.workspace).job_exists("nodata")  # nothing half-made


def test_missing_model_and_endpoint_errors(api) -> None:
    sm = api.client()
    with pytest.raises(ClientError) as exc:
        sm.describe_model(ModelName="ghost")
    assert code(exc) == "ValidationException" and "Could not find model" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        sm.create_endpoint(EndpointName="e1", EndpointConfigName="ghost")
    assert code(exc) == "ValidationException"
    with pytest.raises(ClientError) as exc:
        sm.create_model(ModelName="m1", PrimaryContainer={
            "Image": "x", "ModelDataUrl": "s3://bucket/input/"})
    assert code(exc) == "ValidationException" and "trusted model root" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        sm.describe_transform_job(TransformJobName="ghost")
    assert code(exc) == "ResourceNotFound"
    with pytest.raises(ClientError) as exc:
        api.client("sagemaker-runtime").invoke_endpoint(EndpointName="ghost", Body=b"1,2",
                                                        ContentType="text/csv")
    assert code(exc) == "ValidationError"


def test_signatures_are_verified(api) -> None:
    with pytest.raises(ClientError) as exc:
        api.client(secret="wrong").list_auto_ml_jobs()
    assert code(exc) == "InvalidSignatureException"
    with pytest.raises(ClientError) as exc:
        api.client(key="AKIDUNKNOWN").list_auto_ml_jobs()
    assert code(exc) == "UnrecognizedClientException"
    r = httpx.post(api.url + "/", content="{}", headers={
        "X-Amz-Target": "SageMaker.ListAutoMLJobs", "Content-Type": "application/x-amz-json-1.1"})
    assert r.status_code == 403 and r.json()["__type"] == "MissingAuthenticationTokenException"


def test_unsigned_requests_pass_only_on_loopback_without_token(tmp_path) -> None:
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    open_server, _, _ = start_api(tmp_path / "open", credentials=None)
    token_server, _, _ = start_api(tmp_path / "token", credentials=None, token="s3cret")
    try:
        for server, allowed in ((open_server, True), (token_server, False)):
            for config in (Config(signature_version=UNSIGNED), None):
                sm = boto3.client("sagemaker", endpoint_url=server.url, region_name="us-east-1",
                                  aws_access_key_id="any", aws_secret_access_key="any",
                                  config=config)
                if allowed:
                    assert sm.list_auto_ml_jobs()["AutoMLJobSummaries"] == []
                    # a hand-written request lacking required members, as botocore would not send
                    r = httpx.post(server.url + "/", content=json.dumps({"AutoMLJobName": "x"}),
                                   headers={"X-Amz-Target": "SageMaker.CreateAutoMLJobV2",
                                            "Content-Type": "application/x-amz-json-1.1"})
                    assert r.status_code == 400 and r.json()["__type"] == "ValidationException"
                    assert "Member must not be null" in r.json()["message"]
                    assert "autoMLJobInputDataConfig" in r.json()["message"]
                else:
                    with pytest.raises(ClientError):
                        sm.list_auto_ml_jobs()
    finally:
        open_server.__exit__()
        token_server.__exit__()


def test_list_jobs_filters_sorts_and_pages(api) -> None:
    store = Store.for_workspace(api.workspace)
    for i in range(7):
        store.create_job(name=f"page-{i}", status="Completed" if i % 2 else "Failed",
                         secondary_status="Completed" if i % 2 else "Failed", target="churn",
                         input_uri="x.csv", request={}, job_dir=str(api.workspace / f"p{i}"))
        time.sleep(0.01)
    sm = api.client()
    names, token = [], None
    while True:
        kwargs = {"NameContains": "page", "SortBy": "Name", "SortOrder": "Ascending",
                  "MaxResults": 3}
        page = sm.list_auto_ml_jobs(**kwargs, **({"NextToken": token} if token else {}))
        assert len(page["AutoMLJobSummaries"]) <= 3
        names += [s["AutoMLJobName"] for s in page["AutoMLJobSummaries"]]
        token = page.get("NextToken")
        if not token:
            break
    assert names == [f"page-{i}" for i in range(7)]
    failed = sm.list_auto_ml_jobs(NameContains="page", StatusEquals="Failed")["AutoMLJobSummaries"]
    assert sorted(s["AutoMLJobName"] for s in failed) == ["page-0", "page-2", "page-4", "page-6"]
    newest = sm.list_auto_ml_jobs(NameContains="page", MaxResults=1)["AutoMLJobSummaries"]
    assert newest[0]["AutoMLJobName"] == "page-6"  # default: CreationTime, Descending
    with pytest.raises(ClientError) as exc:
        sm.list_auto_ml_jobs(NextToken="garbage")
    assert code(exc) == "ValidationException"
    paginator = sm.get_paginator("list_auto_ml_jobs")
    pages = list(paginator.paginate(NameContains="page", PaginationConfig={"PageSize": 2}))
    assert sum(len(p["AutoMLJobSummaries"]) for p in pages) == 7 and len(pages) == 4


def test_v1_create_and_describe(api) -> None:
    sm = api.client()
    sm.create_auto_ml_job(
        AutoMLJobName="vone",
        InputDataConfig=[{"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": "s3://bucket/input/train.csv"}},
            "TargetAttributeName": "churn"}],
        OutputDataConfig={"S3OutputPath": "s3://bucket/v1-out"},
        ProblemType="BinaryClassification", AutoMLJobObjective={"MetricName": "AUC"},
        AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 1,
                                                "MaxAutoMLJobRuntimeInSeconds": 30},
                         "CandidateGenerationConfig": {"AlgorithmsConfig": [
                             {"AutoMLAlgorithms": ["linear-learner"]}]}},
        RoleArn=ROLE)
    d = sm.describe_auto_ml_job(AutoMLJobName="vone")
    assert d["InputDataConfig"][0]["TargetAttributeName"] == "churn"
    assert d["ProblemType"] == "BinaryClassification"
    assert d["AutoMLJobConfig"]["CompletionCriteria"]["MaxCandidates"] == 1
    sm.stop_auto_ml_job(AutoMLJobName="vone")  # keep the test short; stopping is tested too
    wait_until(lambda: sm.describe_auto_ml_job(AutoMLJobName="vone")["AutoMLJobStatus"] in (
        "Completed", "Stopped", "Failed"), what="the stopped job to end", every=0.5)
    # stopped right after its creation: the job ends Stopped, not in any final status
    assert sm.describe_auto_ml_job(AutoMLJobName="vone")["AutoMLJobStatus"] == "Stopped"
