"""`tabpilot ...`: thin commands over the Python API. The CLI owns the terminal."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from tabpilot import names
from tabpilot.errors import TabpilotError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="tabpilot: white-box AutoML for tables.")
out = Console()
err = Console(stderr=True)

Workspace = Annotated[Path | None, typer.Option(
    "--workspace", "-w", envvar="TABPILOT_WORKSPACE",
    help="workspace folder (default ./tabpilot-workspace)")]
JsonFlag = Annotated[bool, typer.Option("--json", help="machine-readable JSON on stdout")]


def _store(workspace: Path | None, create: bool = True):
    """The workspace's store; commands that only look things up pass `create=False`, so
    that a mistyped name or workspace leaves no empty workspace behind."""
    from tabpilot.config import workspace_path
    from tabpilot.store import Store

    return Store.for_workspace(workspace_path(workspace), create=create)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return str(value)


def _leaderboard_table(board: pd.DataFrame, metric: str | None, limit: int = 15,
                       best: str | None = None) -> Table:
    """The leaderboard's key columns; every metric is in --json and leaderboard.csv.

    `*` marks the job's best candidate (not rank 1 when a latency bound ruled that out);
    `pareto` the accuracy-latency front."""
    table = Table(title=f"Leaderboard (objective: {metric})")
    headers = ["#", "candidate", "algorithm", str(metric), "fit s", "ms/row", "rows/s", "MB",
               "pareto"]
    for h in headers:
        table.add_column(h, justify="left" if h in ("candidate", "algorithm") else "right")
    for _, row in board.head(limit).iterrows():
        size = row["model_bytes"]
        mark = "*" if row["candidate"] == best else ""
        table.add_row(f"{mark}{row['rank']}", row["candidate"], row["algorithm"],
                      _fmt(row["objective"]), f"{row['fit_seconds']:.1f}",
                      _fmt(row["latency_ms_p50"]), f"{row['throughput_rows_s']:,.0f}",
                      "-" if pd.isna(size) else f"{size / 1e6:.2f}",
                      "yes" if row["pareto"] else "")
    if len(board) > limit:
        table.caption = f"{len(board) - limit} more: tabpilot candidates JOB"
    return table


# -- run ---------------------------------------------------------------------------------
class _ProgressView:
    def __init__(self) -> None:
        self.progress = None
        self.workspace: Path | None = None  # set: the job's leak warnings, once analysed
        self.leaks_shown = False

    def __call__(self, p) -> None:
        self.progress = p
        if self.workspace is not None and not self.leaks_shown:  # the analysis is done
            try:
                found = json.loads((self.workspace / "jobs" / p.job / "data_exploration.json"
                                    ).read_text())["insights"]
            except (OSError, ValueError, KeyError):
                return
            self.show_leaks(found)

    def show_leaks(self, insights: list[dict[str, Any]]) -> None:
        """One line per high or medium target leak, as soon as they are known."""
        self.leaks_shown = True
        for i in insights:
            if i.get("kind") == "target_leakage" and i.get("severity") in ("high", "medium"):
                fix = f"; {i['fix']}" if i.get("fix") else ""
                err.print(f"warning ({i['severity']}): {i['message']}{fix}", markup=False,
                          highlight=False, soft_wrap=True)

    def __rich__(self) -> Table:
        table = Table.grid(padding=(0, 2))
        p = self.progress
        if p is None:
            table.add_row("analysing data...")
            return table
        best = "-" if p.best_value is None else f"{p.best_value:.5g} ({p.best_candidate})"
        bar_width = 30
        filled = int(bar_width * min(1.0, p.elapsed / p.time_limit))
        table.add_row(f"[bold]{p.job}[/]", f"{p.status} / {p.secondary_status}")
        table.add_row("time", f"[{'#' * filled}{'.' * (bar_width - filled)}] "
                              f"{p.elapsed:5.0f}s elapsed, {p.remaining:4.0f}s left")
        table.add_row("trials", f"{p.done} done, {p.failed} failed, {p.running} running")
        table.add_row(f"best {p.metric}", best)
        return table


def _not_a_leak(record: logging.LogRecord) -> bool:
    return not hasattr(record, "target_leak")


@app.command()
def run(
    data: Annotated[str, typer.Argument(help="training table: path or URI (CSV, Parquet, JSON lines)")],
    target: Annotated[str, typer.Option("--target", "-t", help="column to predict")],
    time_limit: Annotated[float, typer.Option(help="seconds for the whole job")] = 300,
    metric: Annotated[str | None, typer.Option(help="objective metric (Autopilot's names)")] = None,
    problem_type: Annotated[str | None, typer.Option(help="binary | multiclass | regression")] = None,
    mode: Annotated[str | None, typer.Option(
        help="auto | ensembling (bagged models + ensemble) | hpo (tuned single model)")] = None,
    name: Annotated[str | None, typer.Option(help="job name (default: generated)")] = None,
    max_candidates: Annotated[int | None, typer.Option(help="stop after this many trials")] = None,
    per_trial_time_limit: Annotated[float | None, typer.Option(help="seconds per trial")] = None,
    validation_fraction: Annotated[float | None, typer.Option(help="holdout share")] = None,
    folds: Annotated[int | None, typer.Option(help="k-fold CV (1 = holdout)")] = None,
    validation_data: Annotated[str | None, typer.Option(help="separate validation table")] = None,
    sample_weight: Annotated[str | None, typer.Option(help="sample weight column")] = None,
    feature_types: Annotated[str | None, typer.Option(help="FeatureSpecification JSON file")] = None,
    na_values: Annotated[list[str] | None, typer.Option("--na-value", help="extra missing marker")] = None,
    algorithms: Annotated[str | None, typer.Option(help="comma list, e.g. lightgbm,xgboost")] = None,
    workers: Annotated[int | None, typer.Option(help="parallel trials (default: cores)")] = None,
    max_latency_ms: Annotated[float | None, typer.Option(
        help="best candidate: the best answering one row within this many ms")] = None,
    stacking: Annotated[str | None, typer.Option(
        help="auto | on | off: a level-2 model on the candidates' out-of-fold predictions "
             "(auto: in ensembling mode)")] = None,
    selection: Annotated[str | None, typer.Option(
        help="balanced: hand out the fastest candidate within 0.5% of the most accurate "
             "and 2x faster (default) | accuracy: the most accurate")] = None,
    distill: Annotated[bool, typer.Option(
        "--distill/--no-distill",
        help="after the ensemble, fit a fast LightGBM student to its predictions")] = True,
    seed: Annotated[int | None, typer.Option()] = None,
    workspace: Workspace = None,
    generate_candidates_only: Annotated[bool, typer.Option(
        "--generate-candidates-only",
        help="analyse the data and write the notebooks (DataExploration, CandidateDefinitions "
             "with the pipelines the search would try first); train nothing")] = False,
    as_json: JsonFlag = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no live progress")] = False,
) -> None:
    """Run an AutoML job on a table and show the leaderboard."""
    from tabpilot.automl import AutoML

    view = _ProgressView()
    job = AutoML(
        target, workspace=workspace, on_progress=view, time_limit=time_limit, metric=metric,
        problem_type=problem_type, mode=mode, name=name, max_candidates=max_candidates,
        per_trial_time_limit=per_trial_time_limit, validation_fraction=validation_fraction,
        n_folds=folds, validation_data=validation_data, sample_weight=sample_weight,
        feature_types=feature_types, na_values=na_values or None,
        algorithms=algorithms.split(",") if algorithms else None, n_workers=workers, seed=seed,
        max_latency_ms=max_latency_ms, generate_candidates_only=generate_candidates_only or None,
        stacking=stacking, selection=selection, distill=None if distill else False,
    )
    interrupted = False
    view.workspace = job.workspace
    jobs_log = logging.getLogger("tabpilot.jobs")
    jobs_log.addFilter(_not_a_leak)  # the view shows leaks, with the medium ones
    try:
        if quiet or as_json or not err.is_terminal:
            job.fit(data)
        else:
            with Live(view, console=err, refresh_per_second=4, transient=False):
                job.fit(data)
    finally:
        jobs_log.removeFilter(_not_a_leak)
    desc = job.describe()
    if not view.leaks_shown:  # no progress came (candidate definitions only)
        view.show_leaks(desc.get("DataInsights") or [])
    interrupted = desc["AutoMLJobStatus"] == "Stopped"
    if as_json:
        _print_json(desc)
    else:
        _show_result(job, desc)
    if desc["AutoMLJobStatus"] == "Failed":
        raise typer.Exit(1)
    if interrupted:
        raise typer.Exit(130)


def _show_result(job, desc: dict[str, Any]) -> None:
    board = job.leaderboard()
    best = (desc["BestCandidate"] or {}).get("CandidateName")
    if not board.empty:
        out.print(_leaderboard_table(board, desc["AutoMLJobObjective"]["MetricName"],
                                     best=best))
    status = f"{desc['AutoMLJobStatus']} ({desc['AutoMLJobSecondaryStatus']})"
    out.print(f"job [bold]{desc['AutoMLJobName']}[/]: {status} in {desc['ElapsedSeconds']}s")
    if desc.get("FailureReason"):
        out.print(f"reason: {desc['FailureReason']}")
    for partial in desc.get("PartialFailureReasons") or []:
        out.print(f"partial failure: {partial['PartialFailureMessage']}")
    for key, location in desc["AutoMLJobArtifacts"].items():
        out.print(f"{key.removesuffix('Location')}: {location}")
    if desc.get("SelectionNote"):
        out.print(f"note: {desc['SelectionNote']}")
    if desc["BestCandidate"]:
        out.print(f"best model: {desc['BestCandidate']['ModelLocation']}")
    if desc.get("FastCandidate"):
        out.print(f"fast choice (nearly as good, far faster): {desc['FastCandidate']}")


# -- inspect ------------------------------------------------------------------------------
@app.command("list")
def list_jobs(workspace: Workspace = None, as_json: JsonFlag = False) -> None:
    """List the jobs in the workspace, newest first."""
    from tabpilot.jobs.views import check_alive

    store = _store(workspace, create=False)
    jobs = [check_alive(store, j) for j in store.list_jobs()]
    rows = [{"AutoMLJobName": j.name, "AutoMLJobStatus": j.status,
             "AutoMLJobSecondaryStatus": j.secondary_status, "ProblemType": j.problem_type,
             "ObjectiveMetric": j.metric, "BestCandidate": j.best_candidate,
             "CreationTime": j.created} for j in jobs]
    if as_json:
        _print_json({"AutoMLJobSummaries": rows})
        return
    table = Table(title=f"Jobs ({len(rows)})")
    for c in ("name", "status", "secondary status", "problem", "metric", "best candidate"):
        table.add_column(c)
    for j in jobs:
        table.add_row(j.name, j.status, j.secondary_status, _fmt(j.problem_type),
                      _fmt(j.metric), _fmt(j.best_candidate))
    out.print(table)


@app.command()
def describe(job: str, workspace: Workspace = None, as_json: JsonFlag = False) -> None:
    """Status, best candidate and artifact locations of a job."""
    from tabpilot.jobs import describe_job

    desc = describe_job(_store(workspace, create=False), names.check(job, "job"))
    if desc["AutoMLJobStatus"] == "InProgress":  # an API job may wait for a slot
        from tabpilot.config import workspace_path
        from tabpilot.jobs import admission

        ahead = admission.position(workspace_path(workspace), job)
        if ahead is not None:
            desc["QueuePosition"] = ahead
    if as_json:
        _print_json(desc)
        return
    for key in ("AutoMLJobName", "AutoMLJobStatus", "AutoMLJobSecondaryStatus",
                "QueuePosition", "FailureReason", "CreationTime", "EndTime", "JobDirectory",
                "LeaderboardLocation", "CandidateCounts", "DataWarnings"):
        if desc.get(key) not in (None, [], {}):
            out.print(f"[bold]{key}[/]: {desc[key]}")
    cfg = desc["AutoMLProblemTypeConfig"]["TabularJobConfig"]
    out.print(f"[bold]Target[/]: {cfg['TargetAttributeName']} ({cfg['ProblemType']}), "
              f"objective {desc['AutoMLJobObjective']['MetricName']}")
    best = desc["BestCandidate"]
    if best:
        value = best["FinalAutoMLJobObjectiveMetric"]["Value"]
        out.print(f"[bold]BestCandidate[/]: {best['CandidateName']} ({best['Algorithm']}) "
                  f"= {value:.5g}, {best['InferenceLatencyMs']:.3f} ms/row, "
                  f"model at {best['ModelLocation']}")


@app.command()
def candidates(job: str, workspace: Workspace = None, as_json: JsonFlag = False,
               all_: Annotated[bool, typer.Option("--all", help="also failed ones")] = False
               ) -> None:
    """The leaderboard of a job, best first."""
    from tabpilot.automl import AutoML

    handle = AutoML.attach(names.check(job, "job"), workspace)
    if as_json:
        _print_json({"Candidates": handle.candidates()})
        return
    board = handle.leaderboard()
    desc = handle.describe()
    out.print(_leaderboard_table(board, desc["AutoMLJobObjective"]["MetricName"],
                                 limit=len(board),
                                 best=(desc["BestCandidate"] or {}).get("CandidateName")))
    if all_:
        for c in handle.candidates():
            if c["CandidateStatus"] != "Completed":
                out.print(f"{c['CandidateName']}: {c['CandidateStatus']} "
                          f"{c.get('FailureReason') or ''}")


@app.command()
def predict(
    job: Annotated[str, typer.Argument(help="job name or model directory")],
    data: Annotated[str, typer.Argument(help="table to score")],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV file to write")],
    candidate: Annotated[str | None, typer.Option(help="candidate (default: best)")] = None,
    workspace: Workspace = None,
) -> None:
    """Score a table with a job's best (or named) model and write the predictions as CSV."""
    from tabpilot.automl import load_model
    from tabpilot.data import read_table

    # job: a name, or a model directory's path; load_model checks which, and the names
    model = load_model(job, candidate=candidate, workspace=workspace)
    df = read_table(data)
    result = pd.DataFrame({"predicted_label": model.predict(df)})
    if model.classes is not None:
        proba = model.predict_proba(df)
        result["probability"] = proba.max(axis=1).to_numpy()
        for label in proba.columns:
            result[f"probability_{label}"] = proba[label].to_numpy()
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    result.to_csv(tmp, index=False)
    tmp.replace(output)
    err.print(f"wrote {len(result)} predictions to {output}")


@app.command()
def report(job: str, candidate: Annotated[str | None, typer.Option(
               help="one candidate (default: every kept one)")] = None,
           workspace: Workspace = None, as_json: JsonFlag = False) -> None:
    """Write explanations and model insights (explanations.json, insights.html) per
    candidate, and execute the DataExploration notebook."""
    from tabpilot.reports.candidate import write_candidate_report

    if candidate is not None:
        names.check(candidate, "candidate")
    store = _store(workspace, create=False)
    row = store.get_job(names.check(job, "job"))
    chosen = [candidate] if candidate else [
        c.name for c in store.list_candidates(job) if c.artifact_dir]
    written = {n: write_candidate_report(Path(row.job_dir), n, row.metric) for n in chosen}
    notebook = None
    if (Path(row.job_dir) / "data_exploration.json").is_file():
        from tabpilot.reports.notebooks import exploration_notebook

        notebook = str(exploration_notebook(Path(row.job_dir), row.name))
    if as_json:
        _print_json({"JobDirectory": row.job_dir, "DataExplorationNotebookLocation": notebook,
                     "Candidates": written})
        return
    out.print(f"job directory: {row.job_dir}")
    if notebook:
        out.print(f"data exploration: {notebook}")
    for name, where in written.items():
        out.print(f"{name}: {where['ModelInsights']} ({where['seconds']:.1f}s)")


@app.command()
def export(
    job: str,
    candidate: Annotated[str | None, typer.Option(help="candidate (default: the best)")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="file to write (default: standard output)")] = None,
    workspace: Workspace = None,
) -> None:
    """Write a candidate's preprocessing and algorithm as a standalone Python script that
    retrains it on the job's split and prints its validation score."""
    from tabpilot.reports.definitions import script

    if candidate is not None:
        names.check(candidate, "candidate")
    row = _store(workspace, create=False).get_job(names.check(job, "job"))
    # written to a file, the script finds the job folder by the path from its own folder
    text = script(Path(row.job_dir), candidate or row.best_candidate, output)
    if output is None:
        sys.stdout.write(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    err.print(f"wrote {output}")


@app.command()
def stop(job: str, workspace: Workspace = None) -> None:
    """Ask a running job to stop; it ends as Stopped with its best-so-far model."""
    row = _store(workspace, create=False).request_stop(names.check(job, "job"))
    out.print(f"job {job}: {row.status}")


@app.command()
def resume(
    job: str,
    time_limit: Annotated[float | None, typer.Option(
        help="seconds for this run (default: the time the job had left, or its whole limit "
             "again when under a quarter was left)")] = None,
    data: Annotated[str | None, typer.Option(
        help="the training table, when the one the job recorded is gone")] = None,
    workspace: Workspace = None,
    as_json: JsonFlag = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no live progress")] = False,
) -> None:
    """Continue a Stopped or Failed job: its finished candidates are kept, the search goes
    on from its trials, then the ensemble, refit and reports run and the job completes."""
    from tabpilot.automl import AutoML

    view = _ProgressView()
    name = names.check(job, "job")
    if quiet or as_json or not err.is_terminal:
        handle = AutoML.resume(name, workspace, time_limit=time_limit, data=data,
                               on_progress=view)
    else:
        with Live(view, console=err, refresh_per_second=4, transient=False):
            handle = AutoML.resume(name, workspace, time_limit=time_limit, data=data,
                                   on_progress=view)
    desc = handle.describe()
    if as_json:
        _print_json(desc)
    else:
        _show_result(handle, desc)
    if desc["AutoMLJobStatus"] == "Failed":
        raise typer.Exit(1)
    if desc["AutoMLJobStatus"] == "Stopped":
        raise typer.Exit(130)


MAX_ERROR_CHARS = 1000


def _error_line(message: str) -> None:
    """`error: ...` as one line, however long or multi-line the message: scripts and
    people read the first line, and a quoted 10 MB header must not flood the terminal."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    if len(line) > MAX_ERROR_CHARS:
        line = line[:MAX_ERROR_CHARS - 3] + "..."
    err.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)


from tabpilot import cli_serving  # noqa: E402,F401  (registers the serving commands)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        code = app(standalone_mode=False)  # typer.Exit(n) comes back as n in this mode
    except TabpilotError as exc:
        _error_line(str(exc))
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        # usage errors (typer's own copy of click) carry exit code 2; shown as one line
        # like every other input error, except a bare `tabpilot`, which shows the help
        if hasattr(exc, "format_message") and type(exc).__name__ != "NoArgsIsHelpError" \
                and getattr(exc, "exit_code", None) == 2:
            ctx = getattr(exc, "ctx", None)
            where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            _error_line(exc.format_message() + where)
            sys.exit(2)
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        if type(exc).__name__ == "Abort":  # Ctrl-C outside a job
            sys.exit(130)
        raise
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    # run the importable module, whose app carries the commands cli_serving registers
    from tabpilot.cli import main as _main

    _main()
