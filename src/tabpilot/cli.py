"""`tabpilot ...`: thin commands over the Python API. The CLI owns the terminal."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live

from tabpilot import names
from tabpilot.cli_output import LiveView, print_leaderboard
from tabpilot.console import CLI_FLAGS, ProgressLog, leak_lines

app = typer.Typer(add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="tabpilot: white-box AutoML for tables.")
out = Console()
err = Console(stderr=True)


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        sys.stdout.write(f"tabpilot {version('tabpilot')}\n")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="print tabpilot's version and exit")] = False,
        store: Annotated[str | None, typer.Option(
            "--store", envvar="TABPILOT_STORE", metavar="URL",
            help="metadata store: postgresql+psycopg://USER@HOST:PORT/DB to share one "
                 "between machines (default: the workspace's tabpilot.db)")] = None,
        artifacts: Annotated[str | None, typer.Option(
            "--artifacts", envvar="TABPILOT_ARTIFACTS", metavar="URL",
            help="artifact store: s3://bucket/prefix (or a shared folder) where jobs publish "
                 "models, reports and notebooks and servers load them from; credentials and "
                 "endpoint from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL_S3 "
                 "(default: the workspace folder)")] = None,
        executor: Annotated[str | None, typer.Option(
            "--executor", envvar="TABPILOT_EXECUTOR", metavar="NAME",
            help="what runs the trials: local (a process per trial, the default), ray "
                 "($RAY_ADDRESS, else a Ray started here), ray://HOST:PORT (a Ray "
                 "cluster's client port), auto (ray inside a Ray cluster, else local)")
        ] = None) -> None:
    """tabpilot: white-box AutoML for tables."""
    if store:  # checked now; the processes this command starts inherit it
        from tabpilot.settings import STORE_ENV, normalize_store_url

        os.environ[STORE_ENV] = normalize_store_url(store)
    if artifacts:  # reachable now or one line (exit 2); the processes started inherit it
        from tabpilot.artifacts.store import open_url
        from tabpilot.settings import ARTIFACTS_ENV, normalize_artifacts_url

        os.environ[ARTIFACTS_ENV] = normalize_artifacts_url(artifacts)
        open_url(os.environ[ARTIFACTS_ENV]).check()
    if executor:  # checked now; the jobs this command starts (and their workers) inherit it
        from tabpilot.settings import EXECUTOR_ENV, normalize_executor

        os.environ[EXECUTOR_ENV] = normalize_executor(executor)

Workspace = Annotated[Path | None, typer.Option(
    "--workspace", "-w", envvar="TABPILOT_WORKSPACE",
    help="workspace folder (default ./tabpilot-workspace)")]
JsonFlag = Annotated[bool, typer.Option("--json", help="machine-readable JSON on stdout")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress output")]
Wide = Annotated[bool, typer.Option(
    "--wide", help="every column, however narrow the terminal")]


def _published_at(location: str | None) -> None:
    """The line naming a model's published copy, when an artifact store other than the
    workspace holds it (`--artifacts`): what `load_model` takes on another machine."""
    from tabpilot.settings import ARTIFACTS_ENV

    if not location or not os.environ.get(ARTIFACTS_ENV):
        return
    from tabpilot.artifacts.store import for_workspace, key_of

    parts = Path(location).parts  # WORKSPACE/jobs/JOB/candidates/NAME/model
    if len(parts) < 6 or parts[-5] != "jobs":
        return
    workspace = Path(*parts[:-5])
    artifacts = for_workspace(workspace)
    key = key_of(location, workspace)
    if not artifacts.in_place and key is not None and artifacts.exists(key):
        say(f"published: {artifacts.where(key)}")


def _store(workspace: Path | None, create: bool = True):
    """The workspace's store; commands that only look things up pass `create=False`, so
    that a mistyped name or workspace leaves no empty workspace behind."""
    from tabpilot.config import workspace_path
    from tabpilot.store import Store

    return Store.for_workspace(workspace_path(workspace), create=create)


def say(text: str) -> None:
    """One line on stdout as it is: no markup, no highlighting, no wrapping."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return str(value)


# -- run ---------------------------------------------------------------------------------
@app.command()
def run(
    data: Annotated[str, typer.Argument(help="training table: path or URI (CSV, Parquet, JSON lines)")],
    target: Annotated[str, typer.Option("--target", "-t", help="column to predict")],
    time_limit: Annotated[float, typer.Option(help="seconds for the whole job")] = 300,
    metric: Annotated[str | None, typer.Option(help="objective metric (Autopilot's names)")] = None,
    problem_type: Annotated[str | None, typer.Option(
        help="binary | multiclass | regression | text-classification (with --text-column)")] = None,
    text_column: Annotated[str | None, typer.Option(
        help="text classification: the column holding the documents (the only feature)")] = None,
    mode: Annotated[str | None, typer.Option(
        help="auto | ensembling (bagged models + ensemble) | hpo (tuned single model)")] = None,
    name: Annotated[str | None, typer.Option(help="job name (default: generated)")] = None,
    max_candidates: Annotated[int | None, typer.Option(help="stop after this many trials")] = None,
    per_trial_time_limit: Annotated[float | None, typer.Option(help="seconds per trial")] = None,
    validation_fraction: Annotated[float | None, typer.Option(
        help="a holdout's share of the rows (default: 2,500 rows of a large table, a "
             "tenth of one of 10,000-25,000 rows)")] = None,
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
        help="balanced: hand out the fastest candidate 2x faster than the most accurate "
             "and within one standard error of it (at most 0.5%) (default) | accuracy: "
             "the most accurate")] = None,
    distill: Annotated[bool, typer.Option(
        "--distill/--no-distill",
        help="after the ensemble, fit a fast LightGBM student to its predictions")] = True,
    seed: Annotated[int | None, typer.Option()] = None,
    mlflow: Annotated[str | None, typer.Option(
        envvar="TABPILOT_MLFLOW_URI",
        help="MLflow tracking URI: log the ended job there (a run per candidate, the best "
             "model registered as 'champion'); needs tabpilot[mlflow]")] = None,
    workspace: Workspace = None,
    generate_candidates_only: Annotated[bool, typer.Option(
        "--generate-candidates-only",
        help="analyse the data and write the notebooks (DataExploration, CandidateDefinitions "
             "with the pipelines the search would try first); train nothing")] = False,
    as_json: JsonFlag = False,
    quiet: Quiet = False,
    wide: Wide = False,
) -> None:
    """Run an AutoML job on a table and show the leaderboard."""
    from tabpilot.automl import AutoML

    job = AutoML(
        target, workspace=workspace, verbosity=0, time_limit=time_limit, metric=metric,
        problem_type=problem_type, mode=mode, name=name, max_candidates=max_candidates,
        per_trial_time_limit=per_trial_time_limit, validation_fraction=validation_fraction,
        folds=folds, validation_data=validation_data, sample_weight=sample_weight,
        feature_types=feature_types, na_values=na_values or None,
        algorithms=algorithms.split(",") if algorithms else None, workers=workers, seed=seed,
        max_latency_ms=max_latency_ms, generate_candidates_only=generate_candidates_only or None,
        stacking=stacking, selection=selection, distill=None if distill else False,
        mlflow=mlflow, text_column=text_column,
    )

    def fit(on_progress):
        job.on_progress = on_progress
        job.fit(data)
        return job

    _finish(_watching(fit, quiet or as_json), as_json, wide)


def _watching(call, quiet: bool):
    """`call(on_progress)` with the job's progress: a live view on a terminal, plain lines
    (one per phase, every 10 trials, the final one) on a pipe or a file, none if `quiet`.
    Leak warnings are shown once either way (after the job when quiet)."""
    from tabpilot.console import leaks_logged_elsewhere

    if quiet:
        with leaks_logged_elsewhere():
            handle = call(None)
        for line in leak_lines(handle.describe().get("DataInsights") or []):
            _say(line)
        return handle
    if not err.is_terminal:
        with leaks_logged_elsewhere():
            return call(ProgressLog(_say, CLI_FLAGS))
    view = LiveView(_say)
    with leaks_logged_elsewhere(), Live(view, console=err, refresh_per_second=4,
                                        transient=False):
        return call(view)


def _say(line: str) -> None:
    err.print(line, markup=False, highlight=False, soft_wrap=True)


def _finish(handle, as_json: bool, wide: bool) -> None:
    """The result of a run or a resume, and its exit code: 1 Failed, 130 Stopped."""
    desc = handle.describe()
    if as_json:
        _print_json(desc)
    else:
        _show_result(handle, desc, wide)
    if desc["AutoMLJobStatus"] == "Failed":
        raise typer.Exit(1)
    if desc["AutoMLJobStatus"] == "Stopped":
        raise typer.Exit(130)


def _show_result(job, desc: dict[str, Any], wide: bool = False) -> None:
    board = job.leaderboard()
    best = (desc["BestCandidate"] or {}).get("CandidateName")
    if not board.empty:
        print_leaderboard(out, board, desc["AutoMLJobObjective"]["MetricName"], best=best,
                          wide=wide)
    status = f"{desc['AutoMLJobStatus']} ({desc['AutoMLJobSecondaryStatus']})"
    out.print(f"job [bold]{desc['AutoMLJobName']}[/]: {status} in {desc['ElapsedSeconds']}s")
    if desc.get("FailureReason"):
        out.print(f"reason: {desc['FailureReason']}")
    for partial in desc.get("PartialFailureReasons") or []:
        out.print(f"partial failure: {partial['PartialFailureMessage']}")
    for key, location in desc["AutoMLJobArtifacts"].items():
        out.print(f"{key.removesuffix('Location')}: {location}", soft_wrap=True)
    if desc.get("SelectionNote"):
        out.print(f"note: {desc['SelectionNote']}")
    if desc["BestCandidate"]:
        out.print(f"best model: {desc['BestCandidate']['ModelLocation']}", soft_wrap=True)
        _published_at(desc['BestCandidate']['ModelLocation'])
    if desc.get("FastCandidate"):
        out.print(f"fast choice (nearly as good, far faster): {desc['FastCandidate']}")


# -- inspect ------------------------------------------------------------------------------
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
                "LeaderboardLocation", "CandidateCounts", "DataWarnings", "InferenceReasons"):
        if desc.get(key) not in (None, [], {}):
            out.print(f"[bold]{key}[/]: {desc[key]}", soft_wrap=True)
    if desc.get("TrainingSample"):  # a dataset larger than the job's memory: the sample's sizes
        from rich.markup import escape

        out.print("[bold]TrainingSample[/]: " + escape(desc["TrainingSample"]["Reason"]),
                  soft_wrap=True)
    if "TimeSeriesForecastingJobConfig" in desc["AutoMLProblemTypeConfig"]:
        from tabpilot.cli_forecast import show_description

        show_description(desc)
        return
    cfg = desc["AutoMLProblemTypeConfig"]["TabularJobConfig"]
    out.print(f"[bold]Target[/]: {cfg['TargetAttributeName']} ({cfg['ProblemType']}), "
              f"objective {desc['AutoMLJobObjective']['MetricName']}")
    best = desc["BestCandidate"]
    if best:
        value = best["FinalAutoMLJobObjectiveMetric"]["Value"]
        out.print(f"[bold]BestCandidate[/]: {best['CandidateName']} ({best['Algorithm']}) "
                  f"= {value:.5g}, {best['InferenceLatencyMs']:.3f} ms/row, "
                  f"model at {best['ModelLocation']}", soft_wrap=True)


@app.command()
def candidates(job: str, workspace: Workspace = None, as_json: JsonFlag = False,
               all_: Annotated[bool, typer.Option("--all", help="also failed ones")] = False,
               wide: Wide = False) -> None:
    """The leaderboard of a job, best first."""
    from tabpilot.automl import AutoML

    handle = AutoML.attach(names.check(job, "job"), workspace)
    if as_json:
        _print_json({"Candidates": handle.candidates()})
        return
    board = handle.leaderboard()
    desc = handle.describe()
    print_leaderboard(out, board, desc["AutoMLJobObjective"]["MetricName"], limit=None,
                      best=(desc["BestCandidate"] or {}).get("CandidateName"), wide=wide)
    if all_:
        for c in handle.candidates():
            if c["CandidateStatus"] != "Completed":
                out.print(f"{c['CandidateName']}: {c['CandidateStatus']} "
                          f"{c.get('FailureReason') or ''}")


@app.command()
def report(job: str, candidate: Annotated[str | None, typer.Option(
               help="one candidate (default: every kept one)")] = None,
           workspace: Workspace = None, as_json: JsonFlag = False,
           quiet: Quiet = False) -> None:
    """Write explanations and model insights (explanations.json, insights.html) per
    candidate, and execute the DataExploration notebook."""
    import time

    from tabpilot.reports.candidate import write_candidate_report

    if candidate is not None:
        names.check(candidate, "candidate")
    store = _store(workspace, create=False)
    row = store.get_job(names.check(job, "job"))
    chosen = [candidate] if candidate else [
        c.name for c in store.list_candidates(job) if c.artifact_dir]
    say = (lambda line: None) if quiet else _say
    if row.problem_type == "TimeSeriesForecasting":  # its reports are forecast/notebook.py's
        from tabpilot.cli_forecast import report_forecast

        report_forecast(row, as_json, say)
        return
    written = {}
    for i, name in enumerate(chosen, 1):
        say(f"[{i}/{len(chosen)}] {name}: explanations and insights...")
        written[name] = write_candidate_report(Path(row.job_dir), name, row.metric)
    notebook = None
    if (Path(row.job_dir) / "data_exploration.json").is_file():
        from tabpilot.reports.notebooks import exploration_notebook

        say("executing DataExploration.ipynb...")
        started = time.time()
        notebook = str(exploration_notebook(Path(row.job_dir), row.name))
        say(f"DataExploration.ipynb executed in {time.time() - started:.1f}s")
    if as_json:
        _print_json({"JobDirectory": row.job_dir, "DataExplorationNotebookLocation": notebook,
                     "Candidates": written})
        return
    out.print(f"job directory: {row.job_dir}", soft_wrap=True)
    if notebook:
        out.print(f"data exploration: {notebook}", soft_wrap=True)
    for name, where in written.items():
        out.print(f"{name}: {where['ModelInsights']} ({where['seconds']:.1f}s)", soft_wrap=True)


@app.command()
def export(
    job: str,
    candidate: Annotated[str | None, typer.Option(help="candidate (default: the best)")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="file to write (default: standard output)")] = None,
    rerun: Annotated[bool, typer.Option(
        "--rerun", help="instead, a script that reruns the candidate inside its job folder "
                        "with tabpilot (distilled candidates too)")] = False,
    workspace: Workspace = None,
) -> None:
    """Write a candidate as a standalone Python script that needs only pandas, numpy,
    scikit-learn and its algorithm's library: `python FILE train DATA` retrains it, prints
    its validation score (the job's table gives the leaderboard's) and saves the pipeline;
    `python FILE predict MODEL NEW` predicts."""
    from tabpilot.reports.definitions import script
    from tabpilot.reports.standalone import standalone

    if candidate is not None:
        names.check(candidate, "candidate")
    row = _store(workspace, create=False).get_job(names.check(job, "job"))
    chosen = candidate or row.best_candidate
    # written to a file, a rerun script finds the job folder by the path from its own folder
    text = script(Path(row.job_dir), chosen, output) if rerun else \
        standalone(Path(row.job_dir), chosen)
    if output is None:
        sys.stdout.write(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    usage = "" if rerun else f"; run `python {output} train DATA` (see its --help)"
    err.print(f"wrote {output}{usage}", markup=False, highlight=False, soft_wrap=True)


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
    quiet: Quiet = False,
    wide: Wide = False,
) -> None:
    """Continue a Stopped or Failed job: its finished candidates are kept, the search goes
    on from its trials, then the ensemble, refit and reports run and the job completes."""
    from tabpilot.automl import AutoML

    name = names.check(job, "job")
    _finish(_watching(lambda on_progress: AutoML.resume(
        name, workspace, time_limit=time_limit, data=data, on_progress=on_progress),
        quiet or as_json), as_json, wide)


from tabpilot import cli_forecast  # noqa: E402,F401,I001  (registers forecast, forecast-predict)
from tabpilot import cli_inspect, cli_monitor, cli_predict, cli_review, cli_serving, cli_tracking  # noqa: E402,F401  (register their commands)
from tabpilot import cli_training  # noqa: E402,F401  (registers logs, training list|describe)
from tabpilot import cli_db  # noqa: E402,F401,I001  (registers db upgrade)
from tabpilot import cli_jobs  # noqa: E402,F401,I001  (registers delete)
from tabpilot.cli_main import entry, main  # noqa: E402,F401,I001  (the command's entry points)


if __name__ == "__main__":
    # run the importable module, whose app carries the commands cli_serving registers
    from tabpilot.cli_main import entry as _entry

    _entry()
