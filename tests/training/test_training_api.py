"""CreateTrainingJob with the built-in XGBoost image through boto3, end to end: the job runs
in a worker process, Describe reports its metrics and statuses, the model.tar.gz opens with
plain xgboost, and an endpoint made from it answers with the booster's own scores."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
import xgboost as xgb
from botocore.exceptions import ClientError
from traininglib import ROLE, XGBOOST, Served, binary_table, training_request


@pytest.fixture(scope="module")
def trained(served: Served) -> dict:
    sm = served.client()
    sm.create_training_job(**training_request("xgb-churn", {
        "num_round": "25", "max_depth": "3", "eta": "0.3", "objective": "binary:logistic",
        "eval_metric": "auc", "subsample": "0.9", "nthread": "1"}))
    return served.wait("xgb-churn")


def booster_from(path) -> xgb.Booster:
    with tarfile.open(path) as tar:
        assert tar.getnames() == ["xgboost-model"]  # the container's layout, nothing else
        raw = tar.extractfile("xgboost-model").read()
    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    return booster


def test_describe_reports_metrics_statuses_and_times(trained: dict) -> None:
    assert trained["TrainingJobStatus"] == "Completed", trained.get("FailureReason")
    assert trained["SecondaryStatus"] == "Completed"
    steps = [t["Status"] for t in trained["SecondaryStatusTransitions"]]
    assert steps == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    metrics = {m["MetricName"]: m["Value"] for m in trained["FinalMetricDataList"]}
    assert set(metrics) == {"train:auc", "validation:auc"}
    assert metrics["validation:auc"] > 0.85
    assert trained["TrainingTimeInSeconds"] >= 0
    assert trained["BillableTimeInSeconds"] == trained["TrainingTimeInSeconds"]
    assert trained["ModelArtifacts"]["S3ModelArtifacts"] == \
        "s3://bucket/output/xgb-churn/output/model.tar.gz"
    assert trained["HyperParameters"]["num_round"] == "25"
    assert trained["AlgorithmSpecification"]["TrainingImage"] == XGBOOST


def test_model_tar_gz_opens_with_plain_xgboost(served: Served, trained: dict) -> None:
    archive = served.s3_root / "bucket" / "output" / "xgb-churn" / "output" / "model.tar.gz"
    booster = booster_from(archive)
    assert booster.num_boosted_rounds() == 25
    assert booster.num_features() == 4


def test_endpoint_answers_with_the_boosters_scores(served: Served, trained: dict) -> None:
    sm, runtime = served.client(), served.client("sagemaker-runtime")
    sm.create_model(ModelName="xgb-churn-model", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": XGBOOST, "ModelDataUrl": trained["ModelArtifacts"]["S3ModelArtifacts"]})
    sm.create_endpoint_config(EndpointConfigName="xgb-churn-config", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "xgb-churn-model",
        "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="xgb-churn", EndpointConfigName="xgb-churn-config")
    assert served.wait_endpoint("xgb-churn")["EndpointStatus"] == "InService"
    rows = binary_table(20, 7)[:, 1:]
    body = "\n".join(",".join(f"{v:.6g}" for v in row) for row in rows)
    answer = runtime.invoke_endpoint(EndpointName="xgb-churn", ContentType="text/csv",
                                     Body=body.encode())
    assert answer["ContentType"].startswith("text/csv")
    scores = np.loadtxt(io.StringIO(answer["Body"].read().decode()))
    archive = served.s3_root / "bucket" / "output" / "xgb-churn" / "output" / "model.tar.gz"
    expected = booster_from(archive).predict(xgb.DMatrix(np.loadtxt(io.StringIO(body),
                                                                    delimiter=",")))
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    as_json = runtime.invoke_endpoint(EndpointName="xgb-churn", ContentType="text/csv",
                                      Accept="application/json", Body=body.encode())
    predictions = json.loads(as_json["Body"].read())["predictions"]
    np.testing.assert_allclose([p["score"] for p in predictions], expected, rtol=1e-6)
    with pytest.raises(ClientError, match="4 feature values"):
        runtime.invoke_endpoint(EndpointName="xgb-churn", ContentType="text/csv", Body=b"1,2\n")


def test_a_sagemaker_trained_model_deploys_and_predicts_like_xgboost(served: Served) -> None:
    """Interop: a model.tar.gz in the SageMaker XGBoost container's format (one file,
    `xgboost-model`, saved by Booster.save_model), from a trusted model root."""
    data = binary_table(200, 3)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2},
                        xgb.DMatrix(data[:, 1:], label=data[:, 0]), 10)
    raw = bytes(booster.save_raw("ubj"))
    archive = served.trusted / "sagemaker" / "model.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    sm, runtime = served.client(), served.client("sagemaker-runtime")
    sm.create_model(ModelName="sm-trained", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-xgboost:1.5-1",
        "ModelDataUrl": f"file://{archive}"})
    sm.create_endpoint_config(EndpointConfigName="sm-trained", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "sm-trained", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="sm-trained", EndpointConfigName="sm-trained")
    assert served.wait_endpoint("sm-trained")["EndpointStatus"] == "InService"
    rows = binary_table(10, 4)[:, 1:]
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in rows)
    answer = runtime.invoke_endpoint(EndpointName="sm-trained", ContentType="text/csv",
                                     Body=body.encode())
    scores = np.loadtxt(io.StringIO(answer["Body"].read().decode()))
    np.testing.assert_allclose(scores, booster.predict(xgb.DMatrix(rows)), rtol=1e-6)


def test_a_model_outside_the_trusted_roots_or_pickled_is_refused(served: Served) -> None:
    import pickle

    sm = served.client()
    outside = served.s3_root / "bucket" / "foreign" / "model.tar.gz"
    outside.parent.mkdir(parents=True)
    raw = pickle.dumps({"not": "a booster"})
    with tarfile.open(outside, "w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    container = {"Image": XGBOOST, "ModelDataUrl": "s3://bucket/foreign/model.tar.gz"}
    with pytest.raises(ClientError, match="not in a trusted model root"):
        sm.create_model(ModelName="foreign", ExecutionRoleArn=ROLE, PrimaryContainer=container)
    pickled = served.trusted / "pickled" / "model.tar.gz"
    pickled.parent.mkdir()
    pickled.write_bytes(outside.read_bytes())
    with pytest.raises(ClientError, match="pickled Booster"):
        sm.create_model(ModelName="pickled", ExecutionRoleArn=ROLE, PrimaryContainer={
            "Image": XGBOOST, "ModelDataUrl": f"file://{pickled}"})


@pytest.mark.parametrize(("change", "message"), [
    ({"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-own-algo:1"},
     "not a built-in algorithm image"),
    ({"hp": {"num_round": "10", "eta": "2"}},
     "The 'eta' hyperparameter of xgboost must be a float in the range [0, 1]. Got '2'"),
    ({"hp": {"num_round": "10", "max_dept": "3"}}, "did you mean 'max_depth'"),
    ({"hp": {"eta": "0.1"}}, "needs the hyperparameter 'num_round'"),
    ({"hp": {"num_round": "5", "objective": "multi:softprob"}}, "needs the hyperparameter "
     "'num_class'"),
    ({"channels": {"train": "s3://bucket/empty/"}}, "channel train at s3://bucket/empty/ "
     "holds no data"),
    ({"channels": {"train": "s3://bucket/missing/"}}, "does not exist"),
    ({"channels": {"training": "s3://bucket/train/"}}, "needs a channel named 'train'"),
    ({"content_type": "application/x-recordio-protobuf"}, "RecordIO-protobuf is not read"),
])
def test_bad_requests_are_one_line_validation_errors(served: Served, change: dict,
                                                     message: str) -> None:
    request = training_request("bad-request", change.get("hp", {"num_round": "5"}),
                               change.get("image", training_request("x", {})[
                                   "AlgorithmSpecification"]["TrainingImage"]),
                               change.get("channels"), change.get("content_type", "text/csv"))
    with pytest.raises(ClientError) as caught:
        served.client().create_training_job(**request)
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert message in error["Message"]
    assert "\n" not in error["Message"]
    with pytest.raises(ClientError, match="does not exist"):
        served.client().describe_training_job(TrainingJobName="bad-request")


@pytest.mark.slow  # a second worker process: ~6 s on two busy cores
def test_list_and_stop(served: Served, trained: dict) -> None:
    sm = served.client()
    sm.create_training_job(**training_request("xgb-long", {
        "num_round": "1000000", "max_depth": "6", "objective": "binary:logistic"}))
    listed = sm.list_training_jobs(NameContains="xgb-")["TrainingJobSummaries"]
    assert {s["TrainingJobName"] for s in listed} >= {"xgb-churn", "xgb-long"}
    completed = sm.list_training_jobs(StatusEquals="Completed")["TrainingJobSummaries"]
    assert "xgb-long" not in {s["TrainingJobName"] for s in completed}
    sm.stop_training_job(TrainingJobName="xgb-long")
    stopped = served.wait("xgb-long", 60)
    assert stopped["TrainingJobStatus"] == "Stopped"
    assert stopped["SecondaryStatus"] == "Stopped"
    with pytest.raises(ClientError, match="only an InProgress job can be stopped"):
        sm.stop_training_job(TrainingJobName="xgb-long")


def test_cli_logs_list_and_describe(served: Served, trained: dict) -> None:
    from typer.testing import CliRunner

    from tabpilot.cli import app

    runner = CliRunner()
    ws = ["-w", str(served.workspace)]
    logged = runner.invoke(app, ["logs", "xgb-churn", *ws])
    assert logged.exit_code == 0, logged.output
    assert "[24]\ttrain-auc:" in logged.output and "#metric validation:auc" in logged.output
    listed = runner.invoke(app, ["training", "list", *ws])
    assert "xgb-churn" in listed.output and "Completed" in listed.output
    described = runner.invoke(app, ["training", "describe", "xgb-churn", "--json", *ws])
    assert json.loads(described.output)["TrainingJobStatus"] == "Completed"
    missing = runner.invoke(app, ["training", "describe", "nope", *ws])
    assert missing.exit_code != 0


def test_sts_get_caller_identity(served: Served) -> None:
    """The SageMaker SDK asks STS for the account; AWS_ENDPOINT_URL_STS can be the server."""
    identity = served.client("sts").get_caller_identity()
    assert identity["Account"] == "000000000000"
    assert identity["UserId"] == "AKIDTABPILOTTEST"
    assert identity["Arn"].endswith(":user/AKIDTABPILOTTEST")


def test_iam_role_check_of_sdk_v3(served: Served) -> None:
    """SDK v3 checks the execution role with IAM before it trains or deploys;
    AWS_ENDPOINT_URL_IAM can be the server: every role exists, trusted by SageMaker, and
    every action is allowed (nothing a role forbids is enforced; the server's own
    authentication is the gate)."""
    import json
    from urllib.parse import unquote

    from botocore.exceptions import ClientError

    iam = served.client("iam")
    role = iam.get_role(RoleName="notebook")["Role"]
    assert role["Arn"] == "arn:aws:iam::000000000000:role/notebook"
    assert role["RoleId"] == iam.get_role(RoleName="notebook")["Role"]["RoleId"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(unquote(trust)) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    wanted = ["ecr:GetAuthorizationToken", "cloudwatch:PutMetricData", "ec2:DescribeVpcs"]
    simulated = iam.simulate_principal_policy(PolicySourceArn=role["Arn"], ActionNames=wanted)
    assert [r["EvalActionName"] for r in simulated["EvaluationResults"]] == wanted
    assert {r["EvalDecision"] for r in simulated["EvaluationResults"]} == {"allowed"}
    assert simulated["IsTruncated"] is False
    with pytest.raises(ClientError, match="RoleName must be") as bad:
        iam.get_role(RoleName="no/slashes")
    assert bad.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError, match="PolicySourceArn must be"):
        iam.simulate_principal_policy(PolicySourceArn="arn:aws:s3:::bucket/notebook",
                                      ActionNames=wanted)
    with pytest.raises(ClientError, match="InvalidAction"):
        iam.list_roles()


def test_data_capture_records_built_in_requests(served: Served, trained: dict) -> None:
    """Deploy with data capture (the notebook's step): requests and the built-in's CSV
    answers land in SageMaker's capture layout under the destination."""
    sm, runtime = served.client(), served.client("sagemaker-runtime")
    sm.create_model(ModelName="xgb-captured", ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": XGBOOST, "ModelDataUrl": trained["ModelArtifacts"]["S3ModelArtifacts"]})
    sm.create_endpoint_config(
        EndpointConfigName="xgb-captured", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "xgb-captured",
            "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}],
        DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": 100,
                           "DestinationS3Uri": "s3://bucket/capture",
                           "CaptureOptions": [{"CaptureMode": "Input"},
                                              {"CaptureMode": "Output"}]})
    sm.create_endpoint(EndpointName="xgb-captured", EndpointConfigName="xgb-captured")
    assert served.wait_endpoint("xgb-captured")["EndpointStatus"] == "InService"
    answer = runtime.invoke_endpoint(EndpointName="xgb-captured", ContentType="text/csv",
                                     Body=b"0.5,0.1,-0.2,1.0\n")
    score = answer["Body"].read().decode().strip()
    files = list((served.s3_root / "bucket" / "capture" / "xgb-captured").rglob("*.jsonl"))
    assert len(files) == 1
    record = json.loads(files[0].read_text().splitlines()[0])
    assert record["captureData"]["endpointInput"]["data"] == "0.5,0.1,-0.2,1.0\n"
    assert record["captureData"]["endpointOutput"]["data"].strip() == score
