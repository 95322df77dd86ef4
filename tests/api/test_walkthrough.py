"""The Autopilot walkthrough with unmodified boto3 code against a real server on loopback:
create a V2 job on a CSV, poll it to Completed, list candidates, create model, endpoint
config and endpoint from the best candidate, invoke it with text/csv; a batch transform;
stopping a second job midway."""

from __future__ import annotations

import time
from pathlib import Path

from apilib import ROLE, churn, job_request
from servinglib import wait_until  # noqa: E402  (apilib puts it on the path)

FINAL = ("Completed", "Failed", "Stopped")


def wait_job(sm, name: str, limit: float = 240) -> dict:
    seen = []
    deadline = time.time() + limit
    while time.time() < deadline:
        d = sm.describe_auto_ml_job_v2(AutoMLJobName=name)
        if not seen or seen[-1] != d["AutoMLJobSecondaryStatus"]:
            seen.append(d["AutoMLJobSecondaryStatus"])
        if d["AutoMLJobStatus"] in FINAL:
            d["seen"] = seen
            return d
        time.sleep(0.5)
    raise AssertionError(f"job {name} did not finish in {limit} s; went through {seen}")


def test_autopilot_walkthrough(api) -> None:
    sm, runtime = api.client(), api.client("sagemaker-runtime")
    arn = sm.create_auto_ml_job_v2(**job_request("walk"),
                                   ModelDeployConfig={"EndpointName": "walk-auto"})["AutoMLJobArn"]
    assert arn.startswith("arn:aws:sagemaker:") and arn.endswith(":automl-job/walk")

    first = sm.describe_auto_ml_job_v2(AutoMLJobName="walk")
    assert first["AutoMLJobStatus"] == "InProgress"
    assert first["RoleArn"] == ROLE

    done = wait_job(sm, "walk")
    assert done["AutoMLJobStatus"] == "Completed", done.get("FailureReason")
    assert done["AutoMLJobSecondaryStatus"] in ("Completed", "MaxCandidatesReached",
                                                 "MaxAutoMLJobRuntimeReached")
    assert done["CreationTime"] <= done["EndTime"]  # boto3 parsed both as datetimes
    best = done["BestCandidate"]
    assert best["FinalAutoMLJobObjectiveMetric"]["MetricName"] == "F1"
    assert 0.5 < best["FinalAutoMLJobObjectiveMetric"]["Value"] <= 1.0
    assert (api.s3_root / "bucket" / "output" / "walk" / "job.json").is_file()  # outputs copied
    for location in done.get("AutoMLJobArtifacts", {}).values():
        assert location.startswith("s3://bucket/output/walk/")
        assert (api.s3_root / location.removeprefix("s3://")).is_file()

    listed = sm.list_candidates_for_auto_ml_job(AutoMLJobName="walk", SortBy="FinalObjectiveMetricValue",
                                               SortOrder="Descending")["Candidates"]
    values = [c["FinalAutoMLJobObjectiveMetric"]["Value"] for c in listed
              if c["CandidateStatus"] == "Completed"]
    assert values and values == sorted(values, reverse=True)
    assert values[0] == best["FinalAutoMLJobObjectiveMetric"]["Value"]

    assert done["ModelDeployResult"]["EndpointName"] == "walk-auto"  # deployed as asked
    sm.get_waiter("endpoint_in_service").wait(EndpointName="walk-auto",
                                              WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    container = best["InferenceContainers"][0]
    sm.create_model(ModelName="walk-model", ExecutionRoleArn=ROLE, Containers=[container])
    assert sm.describe_model(ModelName="walk-model")["ModelArn"].endswith(":model/walk-model")
    sm.create_endpoint_config(EndpointConfigName="walk-config", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "walk-model", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName="walk-endpoint", EndpointConfigName="walk-config")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="walk-endpoint",
                                              WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    rows = churn(5, seed=7).drop(columns="churn")
    body = rows.to_csv(header=False, index=False)
    answer = runtime.invoke_endpoint(EndpointName="walk-endpoint", ContentType="text/csv",
                                     Accept="text/csv", Body=body)
    labels = answer["Body"].read().decode().split()
    assert len(labels) == 5 and set(labels) <= {"yes", "no"}
    names = [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
    assert {"walk-endpoint", "walk-auto"} <= set(names)

    # UpdateEndpoint to a config that captures every request: swapped in, then captured
    sm.create_endpoint_config(EndpointConfigName="walk-capture", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "walk-model"}], DataCaptureConfig={
        "EnableCapture": True, "InitialSamplingPercentage": 100,
        "DestinationS3Uri": "s3://bucket/capture", "CaptureOptions": [
            {"CaptureMode": "Input"}, {"CaptureMode": "Output"}]})
    sm.update_endpoint(EndpointName="walk-endpoint", EndpointConfigName="walk-capture")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="walk-endpoint",
                                              WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    described = sm.describe_endpoint(EndpointName="walk-endpoint")
    assert described["EndpointConfigName"] == "walk-capture"
    assert described["DataCaptureConfig"]["CurrentSamplingPercentage"] == 100
    runtime.invoke_endpoint(EndpointName="walk-endpoint", ContentType="text/csv", Body=body)
    captured = list((api.s3_root / "bucket" / "capture" / "walk-endpoint").rglob("*.jsonl"))
    assert captured and "captureData" in captured[0].read_text()

    # batch transform over the same model, output under the local S3 root
    inputs = api.s3_root / "bucket" / "batch"
    inputs.mkdir()
    churn(50, seed=3).drop(columns="churn").to_csv(inputs / "rows.csv", header=False, index=False)
    sm.create_transform_job(
        TransformJobName="walk-batch", ModelName="walk-model",
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                        "S3Uri": "s3://bucket/batch"}},
                        "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": "s3://bucket/batch-out", "Accept": "text/csv"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    sm.get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName="walk-batch", WaiterConfig={"Delay": 1, "MaxAttempts": 180})
    described = sm.describe_transform_job(TransformJobName="walk-batch")
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    out = Path(api.s3_root / "bucket" / "batch-out" / "rows.csv.out").read_text().split()
    assert len(out) == 50

    sm.delete_endpoint(EndpointName="walk-endpoint")
    assert "walk-endpoint" not in [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]


def test_stop_a_job_midway(api) -> None:
    sm = api.client()
    sm.create_auto_ml_job_v2(**job_request("halt", seconds=300, candidates=None))
    wait_until(lambda: sm.describe_auto_ml_job_v2(AutoMLJobName="halt")[
        "AutoMLJobSecondaryStatus"] not in ("Starting", "AnalyzingData"),
        what="the job to reach training", every=0.3)
    sm.stop_auto_ml_job(AutoMLJobName="halt")
    assert sm.describe_auto_ml_job_v2(AutoMLJobName="halt")["AutoMLJobStatus"] in (
        "Stopping", "Stopped")
    done = wait_job(sm, "halt", limit=120)
    assert done["AutoMLJobStatus"] == "Stopped"
    assert done["AutoMLJobSecondaryStatus"] == "Stopped"
    summaries = sm.list_auto_ml_jobs(StatusEquals="Stopped")["AutoMLJobSummaries"]
    assert [s["AutoMLJobName"] for s in summaries] == ["halt"]
