"""`tabpilot logs JOB` and `tabpilot training list|describe`: training jobs of the built-in
algorithms (CreateTrainingJob through `tabpilot serve`) from the terminal.

`logs` prints a job's log as the worker wrote it (`<workspace>/logs/training-JOB.log`; an
AutoML job's `job-JOB.log` too), and with `--follow` keeps printing until the job ends, as
`sagemaker`'s `logs=True` does from CloudWatch. `list` and `describe` are the SageMaker
operations themselves (`api.app.call`), run on the workspace's store.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from tabpilot.cli import JsonFlag, Workspace, _print_json, app, out, say
from tabpilot.errors import ConfigError, NotFoundError

training_app = typer.Typer(no_args_is_help=True, help=(
    "Training jobs of the built-in algorithms (SageMaker's CreateTrainingJob through "
    "`tabpilot serve`)."))
app.add_typer(training_app, name="training")
Name = Annotated[str, typer.Argument(help="the training job's name")]


def _call(workspace: Path | None, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    from tabpilot.api.app import call
    from tabpilot.api.context import ApiContext
    from tabpilot.api.locations import Locations
    from tabpilot.api.shapes import ApiError
    from tabpilot.config import workspace_path
    from tabpilot.store import Store

    ws = workspace_path(workspace)
    if not (ws / "tabpilot.db").is_file():
        raise NotFoundError(f"no workspace at {ws}; give it with -w or TABPILOT_WORKSPACE")
    try:
        return call(ApiContext(Store.for_workspace(ws), ws, Locations(ws)), operation, params)
    except ApiError as exc:
        raise (NotFoundError if "not found" in exc.message or "does not exist" in exc.message
               else ConfigError)(exc.message) from None


@training_app.command("list")
def list_jobs(workspace: Workspace = None, json_out: JsonFlag = False) -> None:
    """The workspace's training jobs, newest first."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"MaxResults": 100}
    while True:
        result = _call(workspace, "ListTrainingJobs", params)
        found += result["TrainingJobSummaries"]
        if not result.get("NextToken"):
            break
        params["NextToken"] = result["NextToken"]
    if json_out:
        _print_json(found)
        return
    if not found:
        say("no training jobs")
        return
    for job in found:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job["CreationTime"]))
        out.print(f"{job['TrainingJobName']:<34} {job['TrainingJobStatus']:<11} "
                  f"{job.get('SecondaryStatus', ''):<19} {created}", markup=False)


@training_app.command("describe")
def describe(name: Name, workspace: Workspace = None, json_out: JsonFlag = False) -> None:
    """A training job: status, algorithm, final metrics, the model.tar.gz."""
    job = _call(workspace, "DescribeTrainingJob", {"TrainingJobName": name})
    if json_out:
        _print_json(job)
        return
    lines = [f"{job['TrainingJobName']}: {job['TrainingJobStatus']} "
             f"({job['SecondaryStatus']})",
             f"image      {job.get('AlgorithmSpecification', {}).get('TrainingImage')}"]
    if job.get("FailureReason"):
        lines.append(f"failure    {job['FailureReason']}")
    if job.get("TrainingTimeInSeconds") is not None:
        lines.append(f"training   {job['TrainingTimeInSeconds']} s")
    for metric in job.get("FinalMetricDataList", []):
        lines.append(f"metric     {metric['MetricName']} = {metric['Value']:.6g}")
    lines.append(f"model      {job['ModelArtifacts']['S3ModelArtifacts']}")
    for line in lines:
        out.print(line, markup=False, highlight=False)


@app.command("logs")
def logs(name: Annotated[str, typer.Argument(help="a training job's (or AutoML job's) name")],
         follow: Annotated[bool, typer.Option("--follow", "-f", help=(
             "keep printing until the job ends"))] = False,
         workspace: Workspace = None) -> None:
    """A training or processing job's log, as its worker wrote it."""
    from tabpilot.config import workspace_path

    folder = workspace_path(workspace) / "logs"
    path = next((p for p in (folder / f"training-{name}.log", folder / f"job-{name}.log",
                             folder / f"processing-{name}.log") if p.is_file()), None)
    if path is None:
        raise NotFoundError(f"no log for a job named {name} in {folder}; `tabpilot training "
                            "list` names the training jobs")
    with open(path, encoding="utf-8", errors="replace") as f:
        while True:
            chunk = f.read()
            if chunk:
                typer.echo(chunk, nl=False)
            if not follow or not _running(workspace, name, path.name.split("-", 1)[0]):
                rest = f.read()
                if rest:
                    typer.echo(rest, nl=False)
                return
            time.sleep(1.0)


def _running(workspace: Path | None, name: str, kind: str = "training") -> bool:
    what = "Processing" if kind == "processing" else "Training"
    try:
        job = _call(workspace, f"Describe{what}Job", {f"{what}JobName": name})
    except (NotFoundError, ConfigError):
        return False
    return job[f"{what}JobStatus"] in ("InProgress", "Stopping")
