"""`tabpilot monitor baseline | run`: data-quality monitoring from the terminal."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from tabpilot.cli import JsonFlag, Workspace, _print_json, app, out
from tabpilot.errors import ConfigError

monitor_app = typer.Typer(no_args_is_help=True, help=(
    "Data-quality monitoring in SageMaker Model Monitor's shapes: a baseline "
    "(statistics.json, constraints.json), then executions over captured requests."))
app.add_typer(monitor_app, name="monitor")

Method = Annotated[str | None, typer.Option(
    help="drift rule: Robust (threshold and a sample-size-aware KS test) or Simple "
         "(threshold only)")]


@monitor_app.command("baseline")
def baseline(
    source: Annotated[str, typer.Argument(help="a job name or a table (CSV, Parquet, JSON lines)")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="baseline folder (default for a job: <job dir>/monitoring)")
    ] = None,
    target: Annotated[str | None, typer.Option(
        help="a TABLE's column left out of the baseline (the label)")] = None,
    method: Method = None,
    threshold: Annotated[float, typer.Option(help="drift threshold (L-infinity distance)")
                         ] = 0.1,
    workspace: Workspace = None,
    as_json: JsonFlag = False,
) -> None:
    """Write statistics.json and constraints.json (Model Monitor's schema) describing a job's
    training data without its target, or a table."""
    from tabpilot.monitor.baseline import make_baseline

    made = make_baseline(source, output, workspace, target=target, method=method or "Robust",
                         threshold=threshold, categorical_threshold=threshold)
    features = made.statistics["features"]
    if as_json:
        _print_json({"Baseline": str(made.folder), "Items":
                     made.statistics["dataset"]["item_count"],
                     "Features": {f["name"]: f["inferred_type"] for f in features}})
        return
    out.print(f"baseline of {made.statistics['dataset']['item_count']} rows, "
              f"{len(features)} features -> {made.folder}", markup=False, highlight=False,
              soft_wrap=True)


@monitor_app.command("run")
def run(
    source: Annotated[str, typer.Argument(help="an endpoint name or a table")],
    baseline: Annotated[str, typer.Option(
        help="baseline folder, or a job (its baseline, built on first use)")],
    start: Annotated[str | None, typer.Option(
        help="window start: ISO 8601, NOW-2H (S, M, H, D) or -PT1H (default: all captured)")
    ] = None,
    end: Annotated[str, typer.Option(help="window end, same forms (default NOW)")] = "NOW",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="execution folder (default: <workspace>/monitoring/<name>/"
                               "<time>)")] = None,
    method: Method = None,
    workspace: Workspace = None,
    as_json: JsonFlag = False,
) -> None:
    """One execution: check an endpoint's captured requests in a time window (or a table)
    against a baseline; writes constraint_violations.json and the window's statistics.json.
    Exits 0 whether it ends Completed or CompletedWithViolations."""
    from tabpilot.monitor.baseline import is_table, resolve_baseline
    from tabpilot.monitor.capture import capture_folder, parse_time
    from tabpilot.monitor.constraints import METHODS
    from tabpilot.monitor.execution import run_execution

    if method is not None and method not in METHODS:
        raise ConfigError(f"unknown --method {method!r}; use Robust or Simple")
    now = datetime.now(UTC)
    window_start = parse_time(start, now, "--start") if start else None
    window_end = parse_time(end, now, "--end")
    if window_start is not None and window_start >= window_end:
        raise ConfigError(f"--start {start} is not before --end {end}")
    if not is_table(source):
        capture_folder(source, workspace)  # an unknown endpoint fails before the baseline
    base = resolve_baseline(baseline, workspace)
    outcome = run_execution(source, base, workspace=workspace, now=now, start=window_start,
                            end=window_end, output=output, method=method)
    execution, target = outcome.execution, outcome.output
    if as_json:
        _print_json({"ExecutionStatus": execution.status, "Output": str(target),
                     "Baseline": str(base.folder), "Window": outcome.window,
                     "Violations": execution.violations, "Drift": execution.drift})
        return
    out.print(f"{execution.status}: {outcome.window['Rows']} rows against {base.folder} -> {target}",
              markup=False, highlight=False, soft_wrap=True)
    for v in execution.violations:
        out.print(f"  {v['constraint_check_type']} {v['feature_name']}: {v['description']}",
                  markup=False, highlight=False, soft_wrap=True)


from tabpilot import cli_quality, cli_schedules  # noqa: E402,F401  (quality..., schedule...)
