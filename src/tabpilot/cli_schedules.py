"""`tabpilot monitor schedule create|list|describe|start|stop|delete` and `tabpilot monitor
executions`: monitoring schedules from the terminal.

Each command is the SageMaker operation itself (`api.app.call`: the same validation,
handlers and shapes as a boto3 call to `tabpilot serve`), run on the workspace's store with
the CLI's unconfined locations. The schedules run inside `tabpilot serve` on the same
workspace, which scans them every TABPILOT_MONITOR_POLL_SECONDS.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tabpilot.cli import JsonFlag, Workspace, _print_json, say
from tabpilot.cli_monitor import monitor_app
from tabpilot.errors import ConfigError, NotFoundError

schedule_app = typer.Typer(no_args_is_help=True, help=(
    "Monitoring schedules (SageMaker's CreateMonitoringSchedule...); `tabpilot serve` on the "
    "same workspace runs them."))
monitor_app.add_typer(schedule_app, name="schedule")
Name = Annotated[str, typer.Argument(help="the schedule's name")]
ROLE = "arn:aws:iam::000000000000:role/tabpilot"  # SageMaker requires one; tabpilot ignores it


def _call(workspace: Path | None, operation: str, params: dict[str, Any],
          create: bool = False) -> dict[str, Any]:
    from tabpilot.api.app import call
    from tabpilot.api.context import ApiContext
    from tabpilot.api.locations import Locations
    from tabpilot.api.shapes import ApiError
    from tabpilot.config import workspace_path
    from tabpilot.roots import AllowedRoots
    from tabpilot.store import Store

    ws = workspace_path(workspace)
    if not create and not (ws / "tabpilot.db").is_file():
        raise NotFoundError(f"no workspace at {ws}; give it with -w or TABPILOT_WORKSPACE")
    locations = Locations(ws)
    locations.roots = AllowedRoots.unconfined()  # the CLI acts for the user at their shell
    try:
        return call(ApiContext(Store.for_workspace(ws), ws, locations), operation, params)
    except ApiError as exc:
        raise (NotFoundError if exc.code == "ResourceNotFound" else ConfigError)(
            exc.message) from None


def _every(workspace: Path | None, operation: str, params: dict[str, Any], key: str
           ) -> list[dict[str, Any]]:
    """Every page of a List operation's `key`, following NextToken."""
    found: list[dict[str, Any]] = []
    while True:
        result = _call(workspace, operation, params)
        found += result[key]
        if not result.get("NextToken"):
            return found
        params["NextToken"] = result["NextToken"]


def _when(epoch: float | None) -> str:
    from tabpilot.jobs.views import iso_time

    return (iso_time(epoch) or "-")[:19].replace("T", " ")



@schedule_app.command("create")
def create(
    name: Name,
    endpoint: Annotated[str, typer.Option(help="the endpoint whose captured requests to check")],
    cron: Annotated[str, typer.Option(
        "--schedule", help="cron(0 * ? * * *) hourly, cron(0 H ? * * *) daily, "
                           "cron(0 H/N ? * * *) every N hours (UTC), or NOW (once)")
    ] = "cron(0 * ? * * *)",
    start: Annotated[str | None, typer.Option(
        help="window start as an offset from each run, e.g. -PT1H (default: the hour before)")
    ] = None,
    end: Annotated[str | None, typer.Option(help="window end offset, e.g. -PT0H")] = None,
    baseline: Annotated[str | None, typer.Option(
        help="baseline folder, or a job (its baseline); default: the endpoint's job's")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="where executions write (default <workspace>/monitoring)")
    ] = None,
    definition: Annotated[str | None, typer.Option(
        "--job-definition", help="run a Create(Data|Model)QualityJobDefinition by name instead")
    ] = None,
    monitoring_type: Annotated[str, typer.Option(
        "--type", help="with --job-definition: DataQuality or ModelQuality")] = "DataQuality",
    workspace: Workspace = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a schedule checking an endpoint's captured requests against a baseline."""
    from tabpilot.config import workspace_path

    timing = {"ScheduleExpression": cron}
    if start:
        timing["DataAnalysisStartTime"] = start
    if end:
        timing["DataAnalysisEndTime"] = end
    config: dict[str, Any] = {"ScheduleConfig": timing}
    if definition:
        if baseline or output:
            raise ConfigError("--job-definition carries its own baseline and output; leave out "
                              "--baseline and --output")
        config.update(MonitoringJobDefinitionName=definition, MonitoringType=monitoring_type)
    else:
        config["MonitoringJobDefinition"] = _inline(endpoint, baseline, output or workspace_path(
            workspace) / "monitoring", workspace)
    result = _call(workspace, "CreateMonitoringSchedule",
                   {"MonitoringScheduleName": name, "MonitoringScheduleConfig": config},
                   create=True)
    if as_json:
        _print_json(result)
        return
    say(f"monitoring schedule {name} ({cron}) on endpoint {endpoint}: `tabpilot serve` on "
          "this workspace runs it")


def _inline(endpoint: str, baseline: str | None, output: Path, workspace: Path | None
            ) -> dict[str, Any]:
    """The inline MonitoringJobDefinition DefaultModelMonitor would send."""
    definition: dict[str, Any] = {
        "MonitoringInputs": [{"EndpointInput": {"EndpointName": endpoint,
                                                "LocalPath": "/opt/ml/processing/input"}}],
        "MonitoringOutputConfig": {"MonitoringOutputs": [{"S3Output": {
            "S3Uri": str(Path(output).resolve()), "LocalPath": "/opt/ml/processing/output"}}]},
        "MonitoringResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType":
                                                  "ml.m5.xlarge", "VolumeSizeInGB": 20}},
        "MonitoringAppSpecification": {"ImageUri": "tabpilot"}, "RoleArn": ROLE}
    if baseline:
        from tabpilot.monitor import CONSTRAINTS, STATISTICS
        from tabpilot.monitor.baseline import resolve_baseline

        folder = resolve_baseline(baseline, workspace).folder.resolve()
        definition["BaselineConfig"] = {
            "ConstraintsResource": {"S3Uri": str(folder / CONSTRAINTS)},
            "StatisticsResource": {"S3Uri": str(folder / STATISTICS)}}
    return definition


@schedule_app.command("list")
def list_schedules(
    endpoint: Annotated[str | None, typer.Option(help="only this endpoint's")] = None,
    workspace: Workspace = None,
    as_json: JsonFlag = False,
) -> None:
    """The schedules, oldest first."""
    params: dict[str, Any] = {"SortBy": "CreationTime", "SortOrder": "Ascending",
                              "MaxResults": 100}
    if endpoint:
        params["EndpointName"] = endpoint
    found = _every(workspace, "ListMonitoringSchedules", params, "MonitoringScheduleSummaries")
    if as_json:
        _print_json(found)
        return
    if not found:
        say("no monitoring schedules: `tabpilot monitor schedule create` makes one")
    for s in found:
        say(f"{s['MonitoringScheduleName']}  {s['MonitoringScheduleStatus']}  "
              f"{s['MonitoringType']}  endpoint {s.get('EndpointName', '-')}  "
              f"created {_when(s['CreationTime'])}")


@schedule_app.command("describe")
def describe(name: Name, workspace: Workspace = None, as_json: JsonFlag = False) -> None:
    """A schedule: its expression, state and last execution."""
    result = _call(workspace, "DescribeMonitoringSchedule", {"MonitoringScheduleName": name})
    if as_json:
        _print_json(result)
        return
    timing = result["MonitoringScheduleConfig"].get("ScheduleConfig", {})
    say(f"{name}: {result['MonitoringScheduleStatus']}, {result['MonitoringType']} of "
          f"endpoint {result.get('EndpointName', '-')}, {timing.get('ScheduleExpression')}")
    last = result.get("LastMonitoringExecutionSummary")
    if last:
        say(f"last execution: {last['MonitoringExecutionStatus']} for "
              f"{_when(last['ScheduledTime'])}" + (f": {last['FailureReason']}"
                                                   if last.get("FailureReason") else ""))
    else:
        say("no execution yet")


def _simple(operation: str, verb: str):
    def command(name: Name, workspace: Workspace = None, as_json: JsonFlag = False) -> None:
        _call(workspace, operation, {"MonitoringScheduleName": name})
        if as_json:
            _print_json({"MonitoringScheduleName": name, "Done": verb})
            return
        say(f"monitoring schedule {name} {verb}")
    return command


schedule_app.command("start", help="Run the schedule again (slots count from now).")(
    _simple("StartMonitoringSchedule", "started"))
schedule_app.command("stop", help="No new executions; a running one finishes.")(
    _simple("StopMonitoringSchedule", "stopped"))
schedule_app.command("delete", help="Delete the schedule (refused while an execution runs); "
                                    "its executions stay listed.")(
    _simple("DeleteMonitoringSchedule", "deleted"))


@monitor_app.command("executions")
def list_executions(
    schedule: Annotated[str | None, typer.Argument(help="only this schedule's")] = None,
    endpoint: Annotated[str | None, typer.Option(help="only this endpoint's")] = None,
    status: Annotated[str | None, typer.Option(
        help="Pending, InProgress, Completed, CompletedWithViolations or Failed")] = None,
    workspace: Workspace = None,
    as_json: JsonFlag = False,
) -> None:
    """Monitoring executions, latest slot first."""
    params: dict[str, Any] = {"SortBy": "ScheduledTime", "SortOrder": "Descending",
                              "MaxResults": 100}
    for key, value in (("MonitoringScheduleName", schedule), ("EndpointName", endpoint),
                       ("StatusEquals", status)):
        if value:
            params[key] = value
    found = _every(workspace, "ListMonitoringExecutions", params, "MonitoringExecutionSummaries")
    if as_json:
        _print_json(found)
        return
    if not found:
        say("no monitoring executions yet")
    for e in found:
        reason = f": {e['FailureReason']}" if e.get("FailureReason") else ""
        say(f"{_when(e['ScheduledTime'])}  {e['MonitoringScheduleName']}  "
              f"{e['MonitoringExecutionStatus']}{reason}")
