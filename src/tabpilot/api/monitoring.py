"""Model Monitor's control plane: data- and model-quality job definitions, monitoring
schedules and their executions, as SageMaker's API has them.

A job definition and a schedule are rows of the store's resources table holding their
request; a schedule either names a job definition (with MonitoringType) or carries its
definition inline (`MonitoringScheduleConfig.MonitoringJobDefinition`, what
`sagemaker.model_monitor.DefaultModelMonitor.create_monitoring_schedule` sends). Either
way it is reduced to one `job` (endpoint, baseline, output, ground truth) that the
scheduler (`api/scheduler.py`, inside `tabpilot serve`) hands to a worker process per
execution. Every location is resolved by the server's `Locations`, so a schedule reads
and writes only inside the server's roots.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from tabpilot.api.context import ApiContext
from tabpilot.api.paging import in_time_window, page
from tabpilot.api.shapes import ApiError, validation_error
from tabpilot.errors import NotFoundError
from tabpilot.jobs.arns import arn
from tabpilot.monitor.schedule import parse_schedule

DATA, MODEL = "data-quality-job-definition", "model-quality-job-definition"
SCHEDULE, EXECUTION = "monitoring-schedule", "monitoring-execution"
TYPES = {DATA: "DataQuality", MODEL: "ModelQuality"}
KIND_OF_TYPE = {v: k for k, v in TYPES.items()}
RUNNING = ("Pending", "InProgress", "Stopping")
BASELINE_FIELD = "BaselineConfig.ConstraintsResource.S3Uri"
STATISTICS_FIELD = "BaselineConfig.StatisticsResource.S3Uri"
OUTPUT_FIELD = "MonitoringOutputs.S3Output.S3Uri"
GROUND_TRUTH_FIELD = "GroundTruthS3Input.S3Uri"


def _not_found(what: str, name: str) -> ApiError:
    return ApiError("ResourceNotFound", f"Could not find {what} {name!r}.")


def _row(ctx: ApiContext, kind: str, name: str):
    row = ctx.store.find_resource(kind, name)
    if row is None:
        label = {SCHEDULE: "monitoring schedule", DATA: "data quality job definition",
                 MODEL: "model quality job definition"}[kind]
        raise _not_found(label, name)
    return row


# -- the job a schedule runs -------------------------------------------------------------
def _endpoint_job(inputs: dict[str, Any], where: str) -> dict[str, Any]:
    endpoint = inputs.get("EndpointInput")
    if not endpoint:
        raise validation_error(f"{where}: tabpilot monitors an endpoint's captured requests; "
                               "give EndpointInput (BatchTransformInput is not supported)")
    return endpoint


def definition_job(kind: str, request: dict[str, Any]) -> dict[str, Any]:
    """A job definition's request reduced to what an execution needs."""
    prefix = "DataQuality" if kind == DATA else "ModelQuality"
    inputs = request[f"{prefix}JobInput"]
    baseline = request.get(f"{prefix}BaselineConfig") or {}
    app = request[f"{prefix}AppSpecification"]
    endpoint = _endpoint_job(inputs, f"{prefix}JobInput")
    return {
        "MonitoringType": TYPES[kind], "EndpointName": endpoint["EndpointName"],
        "EndpointInput": endpoint,
        "Constraints": (baseline.get("ConstraintsResource") or {}).get("S3Uri"),
        "Statistics": (baseline.get("StatisticsResource") or {}).get("S3Uri"),
        "Output": request[f"{prefix}JobOutputConfig"]["MonitoringOutputs"][0]["S3Output"]["S3Uri"],
        "GroundTruth": (inputs.get("GroundTruthS3Input") or {}).get("S3Uri"),
        "ProblemType": app.get("ProblemType"), "Environment": app.get("Environment") or {},
    }


def inline_job(definition: dict[str, Any]) -> dict[str, Any]:
    """`MonitoringScheduleConfig.MonitoringJobDefinition` (data quality) reduced the same way."""
    inputs = definition["MonitoringInputs"]
    if len(inputs) != 1:
        raise validation_error("MonitoringJobDefinition.MonitoringInputs: give exactly one "
                               "EndpointInput")
    endpoint = _endpoint_job(inputs[0], "MonitoringJobDefinition.MonitoringInputs")
    baseline = definition.get("BaselineConfig") or {}
    return {
        "MonitoringType": "DataQuality", "EndpointName": endpoint["EndpointName"],
        "EndpointInput": endpoint,
        "Constraints": (baseline.get("ConstraintsResource") or {}).get("S3Uri"),
        "Statistics": (baseline.get("StatisticsResource") or {}).get("S3Uri"),
        "Output": definition["MonitoringOutputConfig"]["MonitoringOutputs"][0]["S3Output"]["S3Uri"],
        "GroundTruth": None, "ProblemType": None,
        "Environment": definition.get("Environment") or {},
    }


def check_job(ctx: ApiContext, job: dict[str, Any]) -> None:
    """Refuse, before anything is stored, a job whose locations leave the server's roots or
    whose baseline cannot be found."""
    if len(job.get("Output") or "") == 0:
        raise validation_error("give MonitoringOutputs[0].S3Output.S3Uri")
    ctx.locations.resolve_output(job["Output"], OUTPUT_FIELD)
    for key, field in (("Constraints", BASELINE_FIELD), ("Statistics", STATISTICS_FIELD)):
        if job.get(key):
            where = ctx.locations.resolve(job[key], field)
            if "://" not in where and not Path(where).exists():
                raise validation_error(f"{field}: {job[key]} does not exist; write a baseline "
                                       "with `tabpilot monitor baseline` and point here")
    if job["MonitoringType"] == "ModelQuality":
        if not job.get("GroundTruth"):
            raise validation_error("ModelQualityJobInput.GroundTruthS3Input.S3Uri: give the "
                                   "prefix where ground truth JSON lines arrive")
        ctx.locations.resolve(job["GroundTruth"], GROUND_TRUTH_FIELD)
        if not job.get("ProblemType"):
            raise validation_error("ModelQualityAppSpecification.ProblemType: give "
                                   "BinaryClassification, MulticlassClassification or Regression")


def default_baseline(ctx: ApiContext, endpoint: str) -> Path | None:
    """The baseline of the job whose model an endpoint serves (`<job dir>/monitoring/`):
    the endpoint row's job, else the job folder the model lies in."""
    try:
        row = ctx.store.get_endpoint(endpoint)
    except NotFoundError:
        return None
    if row.job and ctx.store.job_exists(row.job):
        job_dir = ctx.store.get_job(row.job).job_dir
        return Path(job_dir) / "monitoring" if job_dir else None
    for folder in Path(row.model_dir).parents:
        if (folder / "job.json").is_file():
            return folder / "monitoring"
        if folder == ctx.workspace:
            break
    return None


def _schedule_job(ctx: ApiContext, config: dict[str, Any]) -> dict[str, Any]:
    name = config.get("MonitoringJobDefinitionName")
    inline = config.get("MonitoringJobDefinition")
    kind_given = config.get("MonitoringType")
    if bool(name) == bool(inline):
        raise validation_error("MonitoringScheduleConfig: give either MonitoringJobDefinitionName "
                               "(with MonitoringType) or MonitoringJobDefinition, not both")
    if inline:
        if kind_given not in (None, "DataQuality"):
            raise validation_error("an inline MonitoringJobDefinition monitors DataQuality; for "
                                   f"{kind_given} create a job definition and name it")
        return inline_job(inline)
    kind_given = kind_given or "DataQuality"
    if kind_given not in KIND_OF_TYPE:
        raise validation_error(f"MonitoringType {kind_given}: tabpilot monitors DataQuality and "
                               "ModelQuality")
    kind = KIND_OF_TYPE[kind_given]
    row = ctx.store.find_resource(kind, name)
    if row is None:
        raise validation_error(f"no {kind.replace('-', ' ')} named {name!r}; create it first "
                               f"(MonitoringType {kind_given})")
    return {**definition_job(kind, row.spec["request"]), "MonitoringJobDefinitionName": name}


def _check_schedule(ctx: ApiContext, config: dict[str, Any]) -> dict[str, Any]:
    timing = config.get("ScheduleConfig")
    if not timing:
        raise validation_error("MonitoringScheduleConfig.ScheduleConfig.ScheduleExpression: "
                               "give cron(0 * ? * * *) (hourly) or NOW")
    parse_schedule(timing["ScheduleExpression"], timing.get("DataAnalysisStartTime"),
                   timing.get("DataAnalysisEndTime"))
    job = _schedule_job(ctx, config)
    try:
        endpoint = ctx.store.get_endpoint(job["EndpointName"])
    except NotFoundError:
        raise validation_error(f"Could not find endpoint {job['EndpointName']!r}; monitor a "
                               "deployed endpoint that captures data") from None
    if endpoint.capture_percent <= 0:
        raise validation_error(f"endpoint {endpoint.name!r} does not capture data; give its "
                               "endpoint config a DataCaptureConfig (or deploy it with "
                               "--capture-percent)")
    check_job(ctx, job)
    if job["MonitoringType"] == "DataQuality" and not job.get("Constraints") \
            and default_baseline(ctx, job["EndpointName"]) is None:
        raise validation_error(f"endpoint {job['EndpointName']!r} serves no job's model, so it "
                               "has no default baseline; give BaselineConfig.ConstraintsResource "
                               "and StatisticsResource")
    return job


# -- job definitions --------------------------------------------------------------------
def _create_definition(kind: str):
    def create(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
        name = p["JobDefinitionName"]
        if ctx.store.find_resource(DATA, name) or ctx.store.find_resource(MODEL, name):
            raise ApiError("ResourceInUse", f"Job definition {name!r} already exists.")
        check_job(ctx, definition_job(kind, p))
        ctx.store.add_resource(kind, name, {"request": p})
        return {"JobDefinitionArn": arn(kind, name)}
    return create


def _describe_definition(kind: str):
    def describe(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
        row = _row(ctx, kind, p["JobDefinitionName"])
        return {**row.spec["request"], "JobDefinitionArn": arn(kind, row.name),
                "CreationTime": row.created}
    return describe


def _delete_definition(kind: str):
    def delete(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
        name = p["JobDefinitionName"]
        _row(ctx, kind, name)
        users = [r.name for r in ctx.store.list_resources(SCHEDULE)
                 if r.spec["job"].get("MonitoringJobDefinitionName") == name]
        if users:
            raise validation_error(f"Job definition {name!r} is used by monitoring schedule "
                                   f"{users[0]!r}; delete the schedule first")
        ctx.store.delete_resource(kind, name)
        return {}
    return delete


def _list_definitions(kind: str):
    def listing(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
        rows = [(r, definition_job(kind, r.spec["request"])["EndpointName"])
                for r in ctx.store.list_resources(kind)]
        rows = [(r, e) for r, e in rows
                if p.get("NameContains", "").lower() in r.name.lower()
                and p.get("EndpointName") in (None, e)
                and in_time_window(p, "CreationTime", r.created)]
        chosen, token = page(rows, p, {"Name": lambda x: x[0].name,
                                       "CreationTime": lambda x: x[0].created}, "CreationTime")
        return {"JobDefinitionSummaries": [
            {"MonitoringJobDefinitionName": r.name, "MonitoringJobDefinitionArn": arn(kind, r.name),
             "CreationTime": r.created, "EndpointName": e} for r, e in chosen],
            "NextToken": token}
    return listing


# -- schedules --------------------------------------------------------------------------
def create_schedule(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["MonitoringScheduleName"]
    if ctx.store.find_resource(SCHEDULE, name) is not None:
        raise ApiError("ResourceInUse", f"Monitoring schedule {name!r} already exists.")
    job = _check_schedule(ctx, p["MonitoringScheduleConfig"])
    ctx.store.add_resource(SCHEDULE, name, _schedule_spec(p["MonitoringScheduleConfig"], job,
                                                          p.get("Tags", [])),
                           status="Scheduled")
    return {"MonitoringScheduleArn": arn(SCHEDULE, name)}


def _schedule_spec(config: dict[str, Any], job: dict[str, Any], tags: list) -> dict[str, Any]:
    """The lineage fields (EndpointName, MonitoringType, the definition's name, the
    expression) at the top; `Since` is when slots start counting (creation, last start)."""
    return {"config": config, "job": job, "Tags": tags, "EndpointName": job["EndpointName"],
            "MonitoringType": job["MonitoringType"],
            "MonitoringJobDefinitionName": job.get("MonitoringJobDefinitionName"),
            "ScheduleExpression": config["ScheduleConfig"]["ScheduleExpression"],
            "Since": time.time(), "Incarnation": uuid.uuid4().hex[:12]}


def update_schedule(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["MonitoringScheduleName"]
    row = _row(ctx, SCHEDULE, name)
    job = _check_schedule(ctx, p["MonitoringScheduleConfig"])
    spec = {**_schedule_spec(p["MonitoringScheduleConfig"], job, row.spec.get("Tags", [])),
            "Incarnation": row.spec["Incarnation"]}
    ctx.store.update_resource(SCHEDULE, name, spec=spec)
    return {"MonitoringScheduleArn": arn(SCHEDULE, name)}


def executions(ctx: ApiContext, schedule: str | None = None) -> list:
    rows = ctx.store.list_resources(EXECUTION)
    return [r for r in rows if schedule is None or r.spec["MonitoringScheduleName"] == schedule]


def execution_summary(row) -> dict[str, Any]:
    spec = row.spec
    return {"MonitoringScheduleName": spec["MonitoringScheduleName"],
            "ScheduledTime": spec["ScheduledTime"], "CreationTime": row.created,
            "LastModifiedTime": row.modified, "MonitoringExecutionStatus": row.status,
            "ProcessingJobArn": arn("processing-job", row.name),
            "EndpointName": spec["EndpointName"], "FailureReason": row.failure_reason,
            "MonitoringJobDefinitionName": spec.get("MonitoringJobDefinitionName"),
            "MonitoringType": spec["MonitoringType"]}


def describe_schedule(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    row = _row(ctx, SCHEDULE, p["MonitoringScheduleName"])
    spec = row.spec
    mine = [r for r in executions(ctx, row.name)
            if r.spec.get("Incarnation") == spec["Incarnation"]]
    last = max(mine, key=lambda r: (r.spec["ScheduledTime"], r.created), default=None)
    return {"MonitoringScheduleArn": arn(SCHEDULE, row.name), "MonitoringScheduleName": row.name,
            "MonitoringScheduleStatus": row.status, "MonitoringType": spec["MonitoringType"],
            "FailureReason": row.failure_reason, "CreationTime": row.created,
            "LastModifiedTime": row.modified, "MonitoringScheduleConfig": spec["config"],
            "EndpointName": spec["EndpointName"],
            "LastMonitoringExecutionSummary": execution_summary(last) if last else None}


def list_schedules(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    rows = [r for r in ctx.store.list_resources(SCHEDULE)
            if p.get("NameContains", "").lower() in r.name.lower()
            and p.get("EndpointName") in (None, r.spec["EndpointName"])
            and p.get("StatusEquals") in (None, r.status)
            and p.get("MonitoringJobDefinitionName") in (None, r.spec.get(
                "MonitoringJobDefinitionName"))
            and p.get("MonitoringTypeEquals") in (None, r.spec["MonitoringType"])
            and in_time_window(p, "CreationTime", r.created)
            and in_time_window(p, "LastModifiedTime", r.modified)]
    chosen, token = page(rows, p, {"Name": lambda r: r.name, "CreationTime": lambda r: r.created,
                                   "Status": lambda r: r.status}, "CreationTime")
    return {"MonitoringScheduleSummaries": [
        {"MonitoringScheduleName": r.name, "MonitoringScheduleArn": arn(SCHEDULE, r.name),
         "CreationTime": r.created, "LastModifiedTime": r.modified,
         "MonitoringScheduleStatus": r.status, "EndpointName": r.spec["EndpointName"],
         "MonitoringJobDefinitionName": r.spec["MonitoringJobDefinitionName"],
         "MonitoringType": r.spec["MonitoringType"]} for r in chosen], "NextToken": token}


def start_schedule(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    """Scheduled again; slots count from now (slots missed while stopped never run)."""
    row = _row(ctx, SCHEDULE, p["MonitoringScheduleName"])
    if row.status != "Scheduled":
        ctx.store.update_resource(SCHEDULE, row.name, status="Scheduled",
                                  spec={**row.spec, "Since": time.time()})
    return {}


def stop_schedule(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    """No new executions; one already running finishes (as in SageMaker)."""
    row = _row(ctx, SCHEDULE, p["MonitoringScheduleName"])
    ctx.store.update_resource(SCHEDULE, row.name, status="Stopped")
    return {}


def delete_schedule(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    """SageMaker refuses to delete a schedule while one of its executions runs; the
    executions' history stays listed."""
    row = _row(ctx, SCHEDULE, p["MonitoringScheduleName"])
    busy = [r for r in executions(ctx, row.name) if r.status in RUNNING]
    if busy:
        raise validation_error(f"Monitoring schedule {row.name!r} has an execution "
                               f"{busy[0].status} ({arn('processing-job', busy[0].name)}); stop "
                               "the schedule, wait for the execution to end, then delete it")
    ctx.store.delete_resource(SCHEDULE, row.name)
    return {}


def list_executions(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    rows = [r for r in executions(ctx, p.get("MonitoringScheduleName"))
            if p.get("EndpointName") in (None, r.spec["EndpointName"])
            and p.get("StatusEquals") in (None, r.status)
            and p.get("MonitoringJobDefinitionName") in (None, r.spec.get(
                "MonitoringJobDefinitionName"))
            and p.get("MonitoringTypeEquals") in (None, r.spec["MonitoringType"])
            and in_time_window(p, "ScheduledTime", r.spec["ScheduledTime"])
            and in_time_window(p, "CreationTime", r.created)
            and in_time_window(p, "LastModifiedTime", r.modified)]
    chosen, token = page(rows, p, {"CreationTime": lambda r: r.created,
                                   "ScheduledTime": lambda r: r.spec["ScheduledTime"],
                                   "Status": lambda r: r.status}, "ScheduledTime")
    return {"MonitoringExecutionSummaries": [execution_summary(r) for r in chosen],
            "NextToken": token}


OPERATIONS = {
    "CreateDataQualityJobDefinition": _create_definition(DATA),
    "DescribeDataQualityJobDefinition": _describe_definition(DATA),
    "ListDataQualityJobDefinitions": _list_definitions(DATA),
    "DeleteDataQualityJobDefinition": _delete_definition(DATA),
    "CreateModelQualityJobDefinition": _create_definition(MODEL),
    "DescribeModelQualityJobDefinition": _describe_definition(MODEL),
    "ListModelQualityJobDefinitions": _list_definitions(MODEL),
    "DeleteModelQualityJobDefinition": _delete_definition(MODEL),
    "CreateMonitoringSchedule": create_schedule, "DescribeMonitoringSchedule": describe_schedule,
    "ListMonitoringSchedules": list_schedules, "UpdateMonitoringSchedule": update_schedule,
    "StartMonitoringSchedule": start_schedule, "StopMonitoringSchedule": stop_schedule,
    "DeleteMonitoringSchedule": delete_schedule, "ListMonitoringExecutions": list_executions,
}
