"""`tabpilot list | compare`: what the workspace holds, and jobs side by side.

Both read the store only (and, for `compare --measure`, the best models), never a job's
process, so they work while jobs run and after they died. A job's table is fitted to the
terminal by leaving out whole lower-priority columns, never by cutting a name, since job
and candidate names are what the other commands take.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tabpilot import names
from tabpilot.cli import JsonFlag, Wide, Workspace, _print_json, _store, app, out
from tabpilot.cli_output import decimals_for, fit_to_width, fixed
from tabpilot.errors import TabpilotError

# list's columns in the order they are left out on a narrow terminal (first: first to go)
LIST_DROP_ORDER = ["created", "problem", "table", "duration", "best candidate"]


def _elapsed(job: Any) -> float:
    """The job's own measure when it ended (its `seconds`), else the time since it began."""
    recorded = (job.stats or {}).get("seconds")
    if recorded is not None:
        return float(recorded)
    return max(0.0, (job.ended or dt.datetime.now(dt.UTC).timestamp()) - job.created)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _table_name(uri: str | None) -> str:
    """The training table's file name: what a person recognises ('<DataFrame>' from the
    Python API); the whole location is in --json."""
    if not uri:
        return "-"
    if uri.startswith("<"):
        return uri.strip("<>")
    return Path(uri.rstrip("/")).name or uri


# -- list ----------------------------------------------------------------------------------
def job_summary(store: Any, job: Any) -> dict[str, Any]:
    """ListAutoMLJobs' summary fields, plus what tells jobs apart at a glance."""
    from tabpilot.jobs.views import iso_time  # the store's views load on use

    best = store.get_candidate(job.name, job.best_candidate) if job.best_candidate else None
    return {
        "AutoMLJobName": job.name, "AutoMLJobStatus": job.status,
        "AutoMLJobSecondaryStatus": job.secondary_status, "ProblemType": job.problem_type,
        "ObjectiveMetric": job.metric, "BestCandidate": job.best_candidate,
        "BestObjectiveValue": None if best is None else best.objective,
        "ElapsedSeconds": round(_elapsed(job), 3), "TrainingData": job.input_uri,
        "Rows": (job.stats or {}).get("rows"),
        "CreationTime": iso_time(job.created), "EndTime": iso_time(job.ended),
    }


@app.command("list")
def list_jobs(workspace: Workspace = None, as_json: JsonFlag = False, wide: Wide = False
              ) -> None:
    """List the jobs in the workspace, newest first, with their best score and duration."""
    from tabpilot.jobs.views import check_alive

    store = _store(workspace, create=False)
    rows = [job_summary(store, check_alive(store, j)) for j in store.list_jobs()]
    if as_json:
        _print_json({"AutoMLJobSummaries": rows})
        return
    out.print(jobs_table(rows, None if wide else out.width))


def jobs_table(rows: list[dict[str, Any]], width: int | None) -> Table:
    """The jobs as a table no wider than `width` (None: every column)."""
    decimals = decimals_for([r["BestObjectiveValue"] for r in rows])
    cells = [{
        "name": r["AutoMLJobName"],
        "status": _status_of(r),
        "best score": "-" if r["BestObjectiveValue"] is None else
        f"{r['ObjectiveMetric']} {fixed(r['BestObjectiveValue'], decimals)}",
        "best candidate": r["BestCandidate"] or "-",
        "duration": _duration(r["ElapsedSeconds"]),
        "table": _table_name(r["TrainingData"]),
        "problem": r["ProblemType"] or "-",
        "created": dt.datetime.fromisoformat(r["CreationTime"]).astimezone()
        .strftime("%Y-%m-%d %H:%M") if r["CreationTime"] else "-",
    } for r in rows]
    table, left_out = fit_to_width(
        lambda columns: _jobs_grid(columns, cells, len(rows)),
        ["name", "status", "best score", "best candidate", "duration", "table", "problem",
         "created"], LIST_DROP_ORDER, width)
    if left_out:
        table.caption = (f"left out for the terminal's width: {', '.join(left_out)} "
                         "(--wide shows them; --json has every field)")
        table.caption_justify = "left"
    return table


def _status_of(r: dict[str, Any]) -> str:
    """The status, with the phase while the job runs (an ended job's reason, such as
    MaxCandidatesReached, is in --json and `describe`)."""
    secondary, status = r["AutoMLJobSecondaryStatus"], r["AutoMLJobStatus"]
    if status in ("InProgress", "Stopping") and secondary and secondary != status:
        return f"{status}/{secondary}"
    return status


def _jobs_grid(columns: list[str], cells: list[dict[str, str]], n: int) -> Table:
    table = Table(title=f"Jobs ({n})")
    for c in columns:
        table.add_column(c, no_wrap=True, justify="right" if c == "duration" else "left",
                         overflow="ignore" if c in ("name", "best candidate") else "ellipsis")
    for cell in cells:
        table.add_row(*(cell[c] for c in columns))
    return table


# -- compare -------------------------------------------------------------------------------
def compare_view(store: Any, job: Any, measure: bool = False) -> dict[str, Any]:
    """One job's best candidate and what it costs, for side-by-side comparison."""
    best = store.get_candidate(job.name, job.best_candidate) if job.best_candidate else None
    metrics = store.metrics(job.name).get(best.name, {}).get("validation", {}) if best else {}
    completed = sum(1 for c in store.list_candidates(job.name) if c.status == "Completed")
    latency: dict[str, float | None] = {"p50": best.latency_ms_p50 if best else None,
                                        "p99": None}
    if measure and best is not None and best.artifact_dir:
        latency.update(_measure(Path(job.job_dir), best.artifact_dir))
    return {
        "AutoMLJobName": job.name, "AutoMLJobStatus": job.status,
        "ProblemType": job.problem_type, "TrainingData": job.input_uri,
        "Rows": (job.stats or {}).get("rows"), "ElapsedSeconds": round(_elapsed(job), 3),
        "CandidatesCompleted": completed,
        "BestCandidate": best.name if best else None,
        "Algorithm": best.algorithm if best else None,
        "ObjectiveMetric": {"MetricName": job.metric,
                            "Value": best.objective if best else None},
        "ValidationMetrics": {k: v for k, v in sorted(metrics.items())},
        "InferenceLatencyMs": latency,
        "ThroughputRowsPerSecond": best.throughput_rows_s if best else None,
        "ModelBytes": best.model_bytes if best else None,
        "FitSeconds": best.fit_seconds if best else None,
    }


def _measure(job_dir: Path, model_dir: str) -> dict[str, float]:
    """p50 and p99 single-row latency timed now, on the job's validation sample (the job
    records p50 only)."""
    import pandas as pd

    from tabpilot.artifacts import load
    from tabpilot.artifacts.latency import measure

    sample_file = job_dir / "validation_sample.parquet"
    if not sample_file.is_file():
        raise TabpilotError(f"{sample_file} is missing, so the latency cannot be timed; "
                            "compare without --measure")
    timing = measure(load(model_dir), pd.read_parquet(sample_file))
    return {"p50": timing["latency_ms_p50"], "p99": timing["latency_ms_p99"]}


@app.command()
def compare(
    jobs: Annotated[list[str], typer.Argument(help="two or more job names (one is allowed)")],
    workspace: Workspace = None,
    as_json: JsonFlag = False,
    measure: Annotated[bool, typer.Option(
        "--measure", help="time each best model now for p50 and p99 latency (the job "
                          "records p50 only)")] = False,
) -> None:
    """Jobs side by side: best candidate, objective and validation metrics, latency, size,
    fit time, problem type and rows."""
    store = _store(workspace, create=False)
    rows = [store.get_job(names.check(j, "job")) for j in jobs]  # any missing: one error
    views = [compare_view(store, row, measure) for row in rows]
    if as_json:
        _print_json({"Jobs": views})
        return
    out.print(compare_table(views))


def compare_table(views: list[dict[str, Any]]) -> Table:
    """Attributes down, jobs across; each row's numbers in one format."""
    table = Table(title=f"Comparing {len(views)} job{'s' if len(views) != 1 else ''}")
    table.add_column("", no_wrap=True, style="bold")
    for v in views:
        table.add_column(v["AutoMLJobName"], justify="right", overflow="fold")

    def text(label: str, values: list[Any]) -> None:
        table.add_row(label, *("-" if x is None else str(x) for x in values))

    def numbers(label: str, values: list[float | None], decimals: int | None = None) -> None:
        d = decimals_for(values) if decimals is None else decimals
        table.add_row(label, *(fixed(x, d) for x in values))

    text("status", [v["AutoMLJobStatus"] for v in views])
    text("problem type", [v["ProblemType"] for v in views])
    text("table", [_table_name(v["TrainingData"]) for v in views])
    numbers("rows", [v["Rows"] for v in views], 0)
    text("best candidate", [v["BestCandidate"] for v in views])
    text("algorithm", [v["Algorithm"] for v in views])
    objectives = {v["ObjectiveMetric"]["MetricName"] for v in views}
    if len(objectives) == 1:
        numbers(f"objective: {objectives.pop()}", [v["ObjectiveMetric"]["Value"] for v in views])
    else:  # jobs with different objectives: name each
        text("objective", [f"{v['ObjectiveMetric']['MetricName']} "
                           f"{fixed(v['ObjectiveMetric']['Value'], 4)}" for v in views])
    metric_names = sorted({m for v in views for m in v["ValidationMetrics"]} -
                          {v["ObjectiveMetric"]["MetricName"] for v in views})
    for m in metric_names:
        numbers(m, [v["ValidationMetrics"].get(m) for v in views])
    numbers("latency p50 ms/row", [v["InferenceLatencyMs"]["p50"] for v in views], 3)
    if any(v["InferenceLatencyMs"]["p99"] is not None for v in views):
        numbers("latency p99 ms/row", [v["InferenceLatencyMs"]["p99"] for v in views], 3)
    numbers("throughput rows/s", [v["ThroughputRowsPerSecond"] for v in views], 0)
    numbers("model MB", [None if v["ModelBytes"] is None else v["ModelBytes"] / 1e6
                         for v in views], 2)
    numbers("fit s", [v["FitSeconds"] for v in views], 1)
    text("job duration", [_duration(v["ElapsedSeconds"]) for v in views])
    numbers("candidates", [v["CandidatesCompleted"] for v in views], 0)
    if not any(v["InferenceLatencyMs"]["p99"] is not None for v in views):
        table.caption = "p99 latency: tabpilot compare --measure times the models now"
        table.caption_justify = "left"
    return table
