"""Model Monitor's operations through real boto3 against real `tabpilot serve` apps: job
definitions, schedules, executions run by the server's scheduler in worker processes, and
a restart that keeps the schedules and never runs a slot twice."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from apilib import KEY_ID, ROLE, SECRET, Api
from botocore.exceptions import ClientError

from tabpilot.api.app import install
from tabpilot.monitor.baseline import write_baseline
from tabpilot.serving.app import ServerSettings, server_app

sys.path.insert(0, str(Path(__file__).parent.parent / "serving"))
from servinglib import ThreadServer, build_model, churn_table, wait_until  # noqa: E402

ENDPOINT = "churn-live"
DONE = {"Completed", "CompletedWithViolations", "Failed"}
APP = {"ImageUri": "tabpilot"}
RESOURCES = {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                               "VolumeSizeInGB": 20}}
OUTPUT = {"MonitoringOutputs": [{"S3Output": {"S3Uri": "s3://bucket/monitoring",
                                              "LocalPath": "/opt/ml/processing/output"}}]}
ENDPOINT_INPUT = {"EndpointName": ENDPOINT, "LocalPath": "/opt/ml/processing/input"}
BASELINE = {"ConstraintsResource": {"S3Uri": "s3://bucket/baseline/constraints.json"},
            "StatisticsResource": {"S3Uri": "s3://bucket/baseline/statistics.json"}}


def serve(root: Path, workspace: Path, poll: float) -> Api:
    """A server whose scheduler scans every `poll` seconds (first scan after one poll)."""
    os.environ["TABPILOT_MONITOR_POLL_SECONDS"] = str(poll)
    try:
        app = server_app(ServerSettings(workspace=workspace, poll_seconds=0.2))
        install(app, workspace, root, {KEY_ID: SECRET})
    finally:
        del os.environ["TABPILOT_MONITOR_POLL_SECONDS"]
    return Api(ThreadServer(app).__enter__(), root, workspace)


def invoke(api: Api, frame) -> None:
    runtime = api.client("sagemaker-runtime")
    for i in range(0, len(frame), 20):
        runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv",
                                Body=frame.iloc[i:i + 20].to_csv(index=False, header=False))


def executions(sm, schedule: str) -> list[dict]:
    return sm.list_monitoring_executions(MonitoringScheduleName=schedule)[
        "MonitoringExecutionSummaries"]


def finished(sm, schedule: str) -> dict:
    wait_until(lambda: any(e["MonitoringExecutionStatus"] in DONE
                           for e in executions(sm, schedule)), 120, f"{schedule}'s execution")
    (run,) = executions(sm, schedule)
    return run


def now_schedule(name: str, **config) -> dict:
    return dict(MonitoringScheduleName=name, MonitoringScheduleConfig={
        "ScheduleConfig": {"ScheduleExpression": "NOW", "DataAnalysisStartTime": "-PT1H",
                           "DataAnalysisEndTime": "-PT0H"}, **config})


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory):
    """A server that never scans (its poll is an hour): an endpoint capturing its calm
    traffic under its variant, a baseline, definitions; torn down by the test."""
    tmp = tmp_path_factory.mktemp("monitoring")
    root, workspace = tmp / "s3", tmp / "workspace"
    model = build_model(workspace / "trained" / "m" / "model", n_estimators=10)
    train = churn_table(300).drop(columns="label")
    write_baseline(train, root / "bucket" / "baseline")
    api = serve(root, workspace, poll=3600)
    sm = api.client()
    sm.create_model(ModelName="churn", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": "tabpilot", "ModelDataUrl": str(model)})
    sm.create_endpoint_config(EndpointConfigName="churn-capture", ProductionVariants=[{
        "VariantName": "Blue", "ModelName": "churn", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}], DataCaptureConfig={
        "EnableCapture": True, "InitialSamplingPercentage": 100,
        "DestinationS3Uri": "s3://bucket/capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]})
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="churn-capture")
    wait_until(lambda: sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"]
               == "InService", 60, "the endpoint")
    invoke(api, churn_table(400, seed=7).drop(columns="label").iloc[300:])
    sm.create_data_quality_job_definition(
        JobDefinitionName="churn-dq", DataQualityBaselineConfig=BASELINE,
        DataQualityAppSpecification=APP, DataQualityJobInput={"EndpointInput": ENDPOINT_INPUT},
        DataQualityJobOutputConfig=OUTPUT, JobResources=RESOURCES, RoleArn=ROLE)
    sm.create_monitoring_schedule(**now_schedule(
        "calm", MonitoringJobDefinitionName="churn-dq", MonitoringType="DataQuality"))
    yield api
    api.server.__exit__()


def test_definitions_and_schedules_are_validated_listed_and_kept(first: Api) -> None:
    api = serve(first.s3_root, first.workspace, poll=3600)  # a second server, same store
    try:
        _check_definitions_and_schedules(api)
    finally:
        api.server.__exit__()


def _check_definitions_and_schedules(first: Api) -> None:
    sm = first.client()
    captured = list((first.s3_root / "bucket" / "capture" / ENDPOINT).rglob("*.jsonl"))
    assert captured and all(p.relative_to(first.s3_root / "bucket" / "capture" / ENDPOINT)
                            .parts[0] == "Blue" for p in captured)  # the variant level
    assert sm.describe_endpoint(EndpointName=ENDPOINT)["ProductionVariants"][0][
        "VariantName"] == "Blue"
    described = sm.describe_data_quality_job_definition(JobDefinitionName="churn-dq")
    assert described["DataQualityBaselineConfig"] == BASELINE
    assert described["JobDefinitionArn"].endswith("data-quality-job-definition/churn-dq")
    sm.create_model_quality_job_definition(
        JobDefinitionName="churn-mq", ModelQualityAppSpecification={
            **APP, "ProblemType": "BinaryClassification"},
        ModelQualityJobInput={"EndpointInput": {**ENDPOINT_INPUT, "InferenceAttribute": "label"},
                              "GroundTruthS3Input": {"S3Uri": "s3://bucket/ground-truth"}},
        ModelQualityJobOutputConfig=OUTPUT, JobResources=RESOURCES, RoleArn=ROLE)
    listed = sm.list_model_quality_job_definitions(EndpointName=ENDPOINT)
    assert [d["MonitoringJobDefinitionName"] for d in listed["JobDefinitionSummaries"]] == \
        ["churn-mq"]
    assert sm.list_data_quality_job_definitions(EndpointName="other")[
        "JobDefinitionSummaries"] == []

    def refused(call, *words: str, code: str = "ValidationException", **kwargs) -> None:
        with pytest.raises(ClientError) as caught:
            call(**kwargs)
        error = caught.value.response["Error"]
        assert error["Code"] == code, error
        for word in words:
            assert word in error["Message"], error["Message"]

    refused(sm.create_monitoring_schedule, "cron(0 * ? * * *)", "NOW",
            MonitoringScheduleName="bad", MonitoringScheduleConfig={
                "ScheduleConfig": {"ScheduleExpression": "cron(15 * ? * * *)"},
                "MonitoringJobDefinitionName": "churn-dq", "MonitoringType": "DataQuality"})
    refused(sm.create_monitoring_schedule, "missing-dq", MonitoringScheduleName="bad",
            MonitoringScheduleConfig={"ScheduleConfig": {"ScheduleExpression": "NOW"},
                                      "MonitoringJobDefinitionName": "missing-dq",
                                      "MonitoringType": "DataQuality"})
    refused(sm.create_data_quality_job_definition, "S3Output.S3Uri", "allowed roots",
            JobDefinitionName="escape",
            DataQualityAppSpecification=APP,
            DataQualityJobInput={"EndpointInput": ENDPOINT_INPUT},
            DataQualityJobOutputConfig={"MonitoringOutputs": [{"S3Output": {
                "S3Uri": "file:///etc", "LocalPath": "/opt/ml/processing/output"}}]},
            JobResources=RESOURCES, RoleArn=ROLE)
    refused(sm.describe_monitoring_schedule, "nothing", code="ResourceNotFound",
            MonitoringScheduleName="nothing")
    sm.create_monitoring_schedule(MonitoringScheduleName="hourly", MonitoringScheduleConfig={
        "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
        "MonitoringJobDefinitionName": "churn-mq", "MonitoringType": "ModelQuality"})
    refused(sm.delete_model_quality_job_definition, "hourly", JobDefinitionName="churn-mq")
    summaries = sm.list_monitoring_schedules(MonitoringTypeEquals="ModelQuality")[
        "MonitoringScheduleSummaries"]
    assert [(s["MonitoringScheduleName"], s["EndpointName"], s["MonitoringJobDefinitionName"],
             s["MonitoringScheduleStatus"]) for s in summaries] == \
        [("hourly", ENDPOINT, "churn-mq", "Scheduled")]
    assert "calm" in [s["MonitoringScheduleName"] for s in sm.list_monitoring_schedules(
        EndpointName=ENDPOINT, SortBy="Name")["MonitoringScheduleSummaries"]]
    sm.stop_monitoring_schedule(MonitoringScheduleName="hourly")
    assert [s["MonitoringScheduleName"] for s in sm.list_monitoring_schedules(
        StatusEquals="Stopped")["MonitoringScheduleSummaries"]] == ["hourly"]
    sm.start_monitoring_schedule(MonitoringScheduleName="hourly")
    refused(sm.update_monitoring_schedule, "cron(0 H ? * * *)", MonitoringScheduleName="hourly",
            MonitoringScheduleConfig={"ScheduleConfig": {"ScheduleExpression": "daily"},
                                      "MonitoringJobDefinitionName": "churn-mq",
                                      "MonitoringType": "ModelQuality"})
    sm.update_monitoring_schedule(MonitoringScheduleName="hourly", MonitoringScheduleConfig={
        "ScheduleConfig": {"ScheduleExpression": "cron(0 17/12 ? * * *)"},
        "MonitoringJobDefinitionName": "churn-mq", "MonitoringType": "ModelQuality"})
    described = sm.describe_monitoring_schedule(MonitoringScheduleName="hourly")
    assert described["MonitoringScheduleStatus"] == "Scheduled"
    assert described["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"] == \
        "cron(0 17/12 ? * * *)"
    assert "LastMonitoringExecutionSummary" not in described
    sm.delete_monitoring_schedule(MonitoringScheduleName="hourly")
    sm.delete_model_quality_job_definition(JobDefinitionName="churn-mq")
    refused(sm.describe_model_quality_job_definition, "churn-mq", code="ResourceNotFound",
            JobDefinitionName="churn-mq")


@pytest.mark.slow
def test_schedules_run_after_a_restart_once_per_slot(first: Api) -> None:
    assert executions(first.client(), "calm") == []  # its scheduler never scanned
    first.server.__exit__()  # restart: the schedule "calm" was created and never ran
    api = serve(first.s3_root, first.workspace, poll=0.2)
    try:
        sm = api.client()
        described = sm.describe_monitoring_schedule(MonitoringScheduleName="calm")
        assert described["MonitoringScheduleStatus"] == "Scheduled"
        calm = finished(sm, "calm")
        assert calm["MonitoringExecutionStatus"] == "Completed", calm
        slot = time.gmtime(calm["ScheduledTime"].timestamp())
        report = first.s3_root / "bucket" / "monitoring" / ENDPOINT / "calm" / time.strftime(
            "%Y/%m/%d/%H", slot) / "constraint_violations.json"
        assert report.is_file() and '"violations": []' in report.read_text()
        last = sm.describe_monitoring_schedule(MonitoringScheduleName="calm")[
            "LastMonitoringExecutionSummary"]
        assert last["MonitoringExecutionStatus"] == "Completed"
        # shifted traffic, an inline definition as DefaultModelMonitor sends it
        shifted = churn_table(400, seed=7).drop(columns="label").iloc[300:]
        invoke(api, shifted.assign(charges=shifted["charges"] * 3))
        sm.create_monitoring_schedule(**now_schedule("drifted", MonitoringJobDefinition={
            "BaselineConfig": BASELINE, "MonitoringInputs": [{"EndpointInput": ENDPOINT_INPUT}],
            "MonitoringOutputConfig": OUTPUT, "MonitoringResources": RESOURCES,
            "MonitoringAppSpecification": APP, "RoleArn": ROLE}))
        drifted = finished(sm, "drifted")
        assert drifted["MonitoringExecutionStatus"] == "CompletedWithViolations", drifted
        # the SDK's MonitoringExecution reads its output from DescribeProcessingJob
        job = sm.describe_processing_job(
            ProcessingJobName=drifted["ProcessingJobArn"].split("processing-job/")[1])
        assert job["ProcessingJobStatus"] == "Completed"
        assert job["ExitMessage"].startswith("CompletedWithViolations")
        assert job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"].endswith(
            time.strftime(f"{ENDPOINT}/drifted/%Y/%m/%d/%H",
                          time.gmtime(drifted["ScheduledTime"].timestamp())))
        listed = sm.list_monitoring_executions(EndpointName=ENDPOINT, SortBy="ScheduledTime",
                                               SortOrder="Ascending", MaxResults=1)
        assert listed["MonitoringExecutionSummaries"][0]["MonitoringScheduleName"] == "calm"
        rest = sm.list_monitoring_executions(EndpointName=ENDPOINT, SortBy="ScheduledTime",
                                             SortOrder="Ascending", MaxResults=1,
                                             NextToken=listed["NextToken"])
        assert rest["MonitoringExecutionSummaries"][0]["MonitoringScheduleName"] == "drifted"
        assert [e["MonitoringScheduleName"] for e in sm.list_monitoring_executions(
            StatusEquals="CompletedWithViolations")["MonitoringExecutionSummaries"]] == ["drifted"]
        _model_quality(api, sm)
    finally:
        api.server.__exit__()
    # another restart: a third schedule runs, the two slots that ran never run again
    again = serve(first.s3_root, first.workspace, poll=0.2)
    try:
        sm = again.client()
        sm.create_monitoring_schedule(**now_schedule(
            "third", MonitoringJobDefinitionName="churn-dq", MonitoringType="DataQuality"))
        finished(sm, "third")
        assert [len(executions(sm, s)) for s in ("calm", "drifted", "quality", "third")] == \
            [1, 1, 1, 1]
        sm.delete_monitoring_schedule(MonitoringScheduleName="calm")
        assert len(executions(sm, "calm")) == 1  # the history stays
    finally:
        again.server.__exit__()


def _model_quality(api: Api, sm) -> None:
    """Labelled predictions (ground truth joined by inference id) through a scheduled
    model-quality execution (tabpilot.monitor.quality)."""
    from datetime import UTC, datetime

    from tabpilot.monitor.groundtruth import write_ground_truth

    table = churn_table(60, seed=11)
    runtime = api.client("sagemaker-runtime")
    for i in range(40):
        runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv",
                                Body=table.drop(columns="label").iloc[[i]].to_csv(
                                    index=False, header=False), InferenceId=f"q{i}")
    labels = api.workspace.parent / "labels.csv"
    table.iloc[:40].assign(id=[f"q{i}" for i in range(40)]).to_csv(labels, index=False)
    write_ground_truth(ENDPOINT, str(labels), "id", "label", workspace=api.workspace,
                       now=datetime.now(UTC))
    sm.create_model_quality_job_definition(
        JobDefinitionName="churn-quality", ModelQualityAppSpecification={
            **APP, "ProblemType": "BinaryClassification"},
        ModelQualityJobInput={"EndpointInput": ENDPOINT_INPUT, "GroundTruthS3Input": {
            "S3Uri": str(api.workspace / "ground-truth" / ENDPOINT)}},
        ModelQualityJobOutputConfig=OUTPUT, JobResources=RESOURCES, RoleArn=ROLE)
    sm.create_monitoring_schedule(**now_schedule(
        "quality", MonitoringJobDefinitionName="churn-quality", MonitoringType="ModelQuality"))
    run = finished(sm, "quality")
    assert (run["MonitoringExecutionStatus"], run["MonitoringType"]) == \
        ("Completed", "ModelQuality"), run
    slot = time.strftime("%Y/%m/%d/%H", time.gmtime(run["ScheduledTime"].timestamp()))
    folder = api.s3_root / "bucket" / "monitoring" / ENDPOINT / "quality" / slot
    assert "binary_classification_metrics" in (folder / "statistics.json").read_text()
