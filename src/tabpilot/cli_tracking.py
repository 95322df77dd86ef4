"""`tabpilot track JOB --mlflow URI` and `tabpilot lineage NAME`: a job's record outside
and inside the workspace."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from tabpilot import names
from tabpilot.cli import JsonFlag, Workspace, _print_json, _store, app, out, say

SHOWN_EXECUTIONS = 5  # per schedule in the text view; --json lists them all


@app.command()
def track(
    job: Annotated[str, typer.Argument(help="an ended job")],
    mlflow: Annotated[str, typer.Option(
        envvar="TABPILOT_MLFLOW_URI", help="MLflow tracking URI (http://host:5000, a folder...)")],
    experiment: Annotated[str, typer.Option(help="MLflow experiment")] = "tabpilot",
    registered_model: Annotated[str | None, typer.Option(
        help="registered model the best candidate becomes a version of (default: the job's "
             "name), with the alias 'champion'")] = None,
    models: Annotated[str, typer.Option(
        help="models logged as pyfunc models: all (every kept candidate) | best | none")
    ] = "all",
    again: Annotated[bool, typer.Option(
        "--again", help="log the job even if this server has it already")] = False,
    workspace: Workspace = None,
    as_json: JsonFlag = False,
) -> None:
    """Log an ended job to MLflow: a run for the job, a nested run per candidate, the best
    model registered as 'champion' (what `tabpilot run --mlflow URI` does at the end)."""
    from tabpilot.tracking.mlflow import track_job

    tracked = track_job(_store(workspace, create=False), names.check(job, "job"), mlflow,
                        experiment=experiment, registered_model=registered_model,
                        models=models, again=again)
    if as_json:
        _print_json(tracked.as_dict())
        return
    if tracked.already:
        out.print(f"job {job} is already in {mlflow} as run {tracked.run_id} (--again logs it "
                  "once more)", markup=False, highlight=False, soft_wrap=True)
        return
    out.print(f"job {job} -> run {tracked.run_id} in experiment {experiment} at {mlflow}, "
              f"{len(tracked.candidate_runs)} candidate runs", markup=False, highlight=False,
              soft_wrap=True)
    if tracked.registered:
        reg = tracked.registered
        out.print(f"best model: {reg['Name']} version {reg['Version']} @{reg['Alias']}",
                  markup=False, highlight=False)


@app.command()
def lineage(
    name: Annotated[str, typer.Argument(
        help="a job, a candidate (JOB/CANDIDATE), an endpoint or a monitoring schedule")],
    kind: Annotated[str | None, typer.Option(
        help="job | candidate | endpoint | schedule, when NAME names several")] = None,
    workspace: Workspace = None,
    as_json: JsonFlag = False,
) -> None:
    """Where NAME comes from and what came of it: dataset -> job -> candidate -> endpoint
    -> monitoring schedule -> execution (and the MLflow run of the job)."""
    from tabpilot.tracking.lineage import lineage as find

    graph = find(_store(workspace, create=False), name, kind)
    if as_json:
        _print_json(graph)
        return
    for line in tree_lines(graph):
        say(line)


def tree_lines(graph: dict[str, Any]) -> list[str]:
    """The graph as an indented tree from its roots (usually the dataset)."""
    vertices = {v["Id"]: v for v in graph["Vertices"]}
    children: dict[str, list[str]] = {}
    has_parent: set[str] = set()
    for edge in graph["Edges"]:
        children.setdefault(edge["SourceId"], []).append(edge["DestinationId"])
        has_parent.add(edge["DestinationId"])
    lines: list[str] = []
    seen: set[str] = set()

    def walk(vid: str, depth: int) -> None:
        if vid in seen:
            return
        seen.add(vid)
        lines.append("  " * depth + ("└─ " if depth else "") + _label(vertices[vid]))
        kids = children.get(vid, [])
        executions = [k for k in kids if vertices[k]["Type"] == "MonitoringExecution"]
        if len(executions) > SHOWN_EXECUTIONS:  # the latest ones; --json has all
            executions.sort(key=lambda k: _when(vertices[k].get("ScheduledTime")))
            hidden = executions[:-SHOWN_EXECUTIONS]
            kids = [k for k in kids if k not in hidden]
            lines.append("  " * (depth + 1) + f"└─ ({len(hidden)} earlier executions)")
            seen.update(hidden)
        for kid in kids:
            walk(kid, depth + 1)

    for vid in vertices:
        if vid not in has_parent:
            walk(vid, 0)
    for vid in vertices:  # a cycle would leave some unseen; show them all the same
        walk(vid, 0)
    return lines


def _label(v: dict[str, Any]) -> str:
    kind = v["Type"]
    if kind == "Dataset":
        digest = v.get("Sha256")
        return f"dataset {v.get('Source') or ''} sha256:{digest[:16] if digest else 'unknown'}"
    if kind == "Job":
        best = f", best {v['BestCandidate']}" if v.get("BestCandidate") else ""
        return f"job {v['Name']} [{v.get('Status')}] {v.get('ProblemType') or ''}{best}"
    if kind == "Candidate":
        score = f" {v['Objective']:.4g}" if isinstance(v.get("Objective"), float) else ""
        best = " (best)" if v.get("Best") else ""
        return f"candidate {v['Name']} [{v.get('Status')}] {v.get('Algorithm')}{score}{best}"
    if kind == "Endpoint":
        return f"endpoint {v['Name']} [{v.get('Status')}] version {v.get('Version')}"
    if kind == "MonitoringSchedule":
        return (f"monitoring schedule {v['Name']} [{v.get('Status')}] "
                f"{v.get('MonitoringType') or ''} {v.get('ScheduleExpression') or ''}").rstrip()
    if kind == "MonitoringExecution":
        return f"execution {v['Name']} [{v.get('Status')}] {_when(v.get('ScheduledTime'))}".rstrip()
    if kind == "MLflowRun":
        reg = v.get("RegisteredModel") or {}
        model = f", model {reg.get('Name')} v{reg.get('Version')}" if reg else ""
        return f"MLflow run {v['Name']} at {v.get('TrackingUri')}{model}"
    return f"{kind} {v['Name']}"


def _when(value: Any) -> str:
    """A scheduled time as the store keeps it (epoch seconds, or ISO text) in ISO form."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value or "")
