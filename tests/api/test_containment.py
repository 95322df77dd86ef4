"""Every location field of every SageMaker action, aimed outside the server's roots: each
is refused with a 400 naming the field, and nothing outside is read or written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from apilib import KEY_ID, ROLE, SECRET, Api, churn, job_request, start_api
from botocore.exceptions import ClientError
from servinglib import build_model

ESCAPES = [
    "s3://bucket/../../outside/secret.csv",  # .. out of the S3 root
    "s3://bucket/input/../../../outside",
    "s3://bucket/link/secret.csv",  # a symlink in the root that leads out
    "s3://bucket/linked.csv",
    "s3://../outside/secret.csv",  # no bucket
    "s3:///etc/passwd",  # an absolute key
    "file:///etc/passwd",
    "https://example.com/secret.csv",  # a remote location nobody allowed
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("contain")
    server, root, workspace = start_api(tmp, {KEY_ID: SECRET})
    outside = tmp / "outside"
    outside.mkdir()
    churn(60).to_csv(outside / "secret.csv", index=False)  # a table that would train
    build_model(outside / "model")  # a real model nobody said to trust
    (root / "bucket" / "link").symlink_to(outside, target_is_directory=True)
    (root / "bucket" / "linked.csv").symlink_to(outside / "secret.csv")
    (root / "bucket" / "model").symlink_to(outside / "model", target_is_directory=True)
    yield Api(server, root, workspace)
    server.__exit__()


def _snapshot(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in folder.rglob("*")}


def _refused(call, field: str | None = None) -> str:
    with pytest.raises(ClientError) as exc:
        call()
    error = exc.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400, error
    assert error["Error"]["Code"] == "ValidationException", error
    message = error["Error"]["Message"]
    # a URI that passes botocore's own pattern reaches the resolver, which names the field
    if field is not None:
        assert field in message, message
    return message


def _job(name: str, training: str = "s3://bucket/input/", output: str = "s3://bucket/output",
         validation: str | None = None, features: str | None = None) -> dict:
    request = job_request(name)
    request["AutoMLJobInputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = training
    request["OutputDataConfig"]["S3OutputPath"] = output
    if validation:
        request["AutoMLJobInputDataConfig"].append({
            "ChannelType": "validation", "ContentType": "text/csv;header=present",
            "CompressionType": "None",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": validation}}})
    if features:
        tabular = request["AutoMLProblemTypeConfig"]["TabularJobConfig"]
        tabular.setdefault("CandidateGenerationConfig", {})
        tabular["FeatureSpecificationS3Uri"] = features
    return request


def _passes_pattern(uri: str) -> bool:
    return uri.startswith(("s3://", "https://")) and not uri.startswith("s3:///")


@pytest.mark.parametrize("uri", ESCAPES)
def test_job_locations_stay_inside(api: Api, uri: str) -> None:
    sm = api.client()
    outside = api.s3_root.parent / "outside"
    before = _snapshot(outside)
    field = "S3Uri" if _passes_pattern(uri) else None
    _refused(lambda: sm.create_auto_ml_job_v2(**_job("escape-train", training=uri)), field)
    _refused(lambda: sm.create_auto_ml_job_v2(**_job("escape-valid", validation=uri)), field)
    _refused(lambda: sm.create_auto_ml_job_v2(**_job("escape-out", output=uri)),
             "S3OutputPath" if field else None)
    _refused(lambda: sm.create_auto_ml_job_v2(**_job("escape-spec", features=uri)),
             "FeatureSpecificationS3Uri" if field else None)
    v1 = {"AutoMLJobName": "escape-v1", "RoleArn": ROLE,
          "InputDataConfig": [{"DataSource": {"S3DataSource": {
              "S3DataType": "S3Prefix", "S3Uri": uri}}, "TargetAttributeName": "churn"}],
          "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"}}
    _refused(lambda: sm.create_auto_ml_job(**v1), field)
    assert sm.list_auto_ml_jobs(NameContains="escape")["AutoMLJobSummaries"] == []
    assert _snapshot(outside) == before


@pytest.mark.parametrize("uri", [*ESCAPES, "s3://bucket/model"])
def test_models_load_only_from_trusted_roots(api: Api, uri: str) -> None:
    """s3://bucket/model is a real model inside the S3 root, behind a symlink that leads
    out; a model in the S3 root itself is not trusted either (loading runs its code)."""
    sm = api.client()
    message = _refused(lambda: sm.create_model(
        ModelName="escape-model", ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": "x", "ModelDataUrl": uri}),
        "ModelDataUrl" if _passes_pattern(uri) else None)
    if _passes_pattern(uri):
        assert "trusted model root" in message
    with pytest.raises(ClientError):
        sm.describe_model(ModelName="escape-model")


@pytest.mark.parametrize("uri", ESCAPES)
def test_capture_and_transform_locations_stay_inside(api: Api, uri: str) -> None:
    sm = api.client()
    outside = api.s3_root.parent / "outside"
    before = _snapshot(outside)
    _workspace_model(api)
    capture = {"EnableCapture": True, "InitialSamplingPercentage": 100,
               "DestinationS3Uri": uri, "CaptureOptions": [{"CaptureMode": "Input"}]}
    pattern_ok = _passes_pattern(uri) and uri != "s3:///etc/passwd"
    _refused(lambda: sm.create_endpoint_config(
        EndpointConfigName="escape-config", DataCaptureConfig=capture,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "contained",
                             "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}]),
        "DestinationS3Uri" if pattern_ok else None)
    transform = dict(
        TransformJobName="escape-in", ModelName="contained",
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                        "S3Uri": uri}},
                        "ContentType": "text/csv"},
        TransformOutput={"S3OutputPath": "s3://bucket/batch-out"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    _refused(lambda: sm.create_transform_job(**transform),
             "TransformInput" if _passes_pattern(uri) else None)
    transform.update(TransformJobName="escape-out", TransformInput={
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/input/"}},
        "ContentType": "text/csv"}, TransformOutput={"S3OutputPath": uri})
    _refused(lambda: sm.create_transform_job(**transform),
             "TransformOutput" if _passes_pattern(uri) else None)
    assert _snapshot(outside) == before


def test_outputs_never_land_in_the_workspace_state(api: Api) -> None:
    """The workspace is a data root, but its database, jobs and models are the server's."""
    sm = api.client()
    _workspace_model(api)  # makes the jobs folder
    # through the S3 root, a symlink to the workspace's jobs folder
    (api.s3_root / "bucket" / "ws-jobs").symlink_to(api.workspace / "jobs",
                                                     target_is_directory=True)
    _refused(lambda: sm.create_auto_ml_job_v2(**_job("escape-ws", output="s3://bucket/ws-jobs")),
             "S3OutputPath")


def _workspace_model(api: Api) -> None:
    """A model named 'contained', from a real model directory inside the workspace."""
    sm = api.client()
    try:
        sm.describe_model(ModelName="contained")
        return
    except ClientError:
        pass
    directory = api.workspace / "jobs" / "hand-made" / "candidates" / "c" / "model"
    if not directory.exists():
        build_model(directory)
    # CreateModel takes only s3:// and https:// URLs (botocore's pattern): the workspace's
    # model is reached through a link under the S3 root (links into a trusted root count)
    link = api.s3_root / "bucket" / "ws-models"
    if not link.exists():
        link.symlink_to(api.workspace / "jobs", target_is_directory=True)
    sm.create_model(ModelName="contained", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "x", "ModelDataUrl": "s3://bucket/ws-models/hand-made/candidates/c/model"})
