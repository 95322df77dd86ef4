"""`tabpilot monitor ground-truth | quality-baseline | quality`: model-quality monitoring
from the terminal (labels in, metrics and violations out)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from tabpilot.cli import JsonFlag, Workspace, _print_json, say
from tabpilot.cli_monitor import monitor_app
from tabpilot.errors import ConfigError

ProblemTypeOption = Annotated[str | None, typer.Option(
    "--problem-type", help="BinaryClassification, MulticlassClassification or Regression "
                           "(binary, multiclass, regression)")]



@monitor_app.command("ground-truth")
def ground_truth(
    endpoint: Annotated[str, typer.Argument(help="the endpoint whose predictions are labelled")],
    table: Annotated[str, typer.Argument(help="CSV, Parquet or JSON lines of (id, label)")],
    id_column: Annotated[str, typer.Option(help="the column of inference ids")],
    label_column: Annotated[str, typer.Option(help="the column of true labels")],
    workspace: Workspace = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a table of (inference id, true label) as Model Monitor's ground-truth JSON
    lines, under <workspace>/ground-truth/<endpoint>/YYYY/MM/DD/HH/."""
    from tabpilot.monitor.groundtruth import write_ground_truth

    path, count = write_ground_truth(endpoint, table, id_column, label_column,
                                     workspace=workspace, now=datetime.now(UTC))
    if as_json:
        _print_json({"GroundTruth": str(path), "Records": count})
        return
    say(f"{count} labels -> {path}")


@monitor_app.command("quality-baseline")
def quality_baseline(
    source: Annotated[str, typer.Argument(help="a job name, or a table of labelled predictions")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="baseline folder (default for a job: "
                               "<job dir>/monitoring/model-quality)")] = None,
    label_column: Annotated[str | None, typer.Option(help="a TABLE's true labels")] = None,
    prediction_column: Annotated[str | None, typer.Option(
        help="a TABLE's predicted labels (or values)")] = None,
    probability_column: Annotated[str | None, typer.Option(
        help="a TABLE's probability of the positive class (binary; for auc)")] = None,
    positive_label: Annotated[str | None, typer.Option(
        help="the positive class of a binary problem (default: 1, true, else the second)")
    ] = None,
    problem_type: ProblemTypeOption = None,
    margin: Annotated[float, typer.Option(
        help="how many of the baseline's standard deviations a metric may worsen before it "
             "is a violation (0: any worse value)")] = 2.0,
    workspace: Workspace = None,
    as_json: JsonFlag = False,
) -> None:
    """Write statistics.json and suggested constraints.json (Model Monitor's model-quality
    schema): for a job from its best candidate's held-out predictions, for a table from
    its label and prediction columns."""
    from tabpilot.monitor.quality import quality_baseline as make

    made = make(source, output, workspace, label_column=label_column,
                prediction_column=prediction_column, probability_column=probability_column,
                problem_type=problem_type, positive=positive_label, margin=margin)
    if as_json:
        _print_json(made)
        return
    say(f"{made['ProblemType']} baseline of {made['Items']} labelled predictions -> "
         f"{made['Baseline']}")
    for name, rule in made["Constraints"].items():
        say(f"  {name} {rule['comparison_operator']} {rule['threshold']:.6g}")


@monitor_app.command("quality")
def quality(
    endpoint: Annotated[str, typer.Argument(help="the endpoint whose predictions are measured")],
    baseline: Annotated[str | None, typer.Option(
        help="constraints.json, its folder, or a job (its quality baseline)")] = None,
    problem_type: ProblemTypeOption = None,
    ground_truth: Annotated[Path | None, typer.Option(
        help="ground-truth folder (default <workspace>/ground-truth/<endpoint>)")] = None,
    start: Annotated[str | None, typer.Option(
        help="window start: ISO 8601, NOW-2H (S, M, H, D) or -PT1H (default: all captured)")
    ] = None,
    end: Annotated[str, typer.Option(help="window end, same forms (default NOW)")] = "NOW",
    inference_attribute: Annotated[str | None, typer.Option(
        help="the response's predicted label: a JSON key or a CSV column index")] = None,
    probability_attribute: Annotated[str | None, typer.Option(
        help="the response's probability of the positive class (SageMaker's meaning; leave "
             "it out for tabpilot's own responses)")] = None,
    probability_threshold: Annotated[float | None, typer.Option(
        help="positive from this probability on, when no inference attribute is given")
    ] = None,
    positive_label: Annotated[str | None, typer.Option(
        help="the positive class of a binary problem")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="execution folder (default: <workspace>/monitoring/<endpoint>/"
                               "model-quality/<time>)")] = None,
    workspace: Workspace = None,
    as_json: JsonFlag = False,
) -> None:
    """One model-quality execution: the endpoint's captured predictions in a window,
    joined with ground truth by inference id, measured and checked against the baseline's
    constraints; writes statistics.json and constraint_violations.json. Exits 0 whether it
    ends Completed or CompletedWithViolations."""
    from tabpilot.monitor.capture import capture_folder, parse_time
    from tabpilot.monitor.quality import (
        baseline_problem_type,
        resolve_constraints,
        run_model_quality,
    )

    if probability_threshold is not None and not 0 <= probability_threshold <= 1:
        raise ConfigError(f"--probability-threshold is a probability in [0, 1], got "
                          f"{probability_threshold}")
    now = datetime.now(UTC)
    window_start = parse_time(start, now, "--start") if start else None
    window_end = parse_time(end, now, "--end")
    if window_start is not None and window_start >= window_end:
        raise ConfigError(f"--start {start} is not before --end {end}")
    capture_folder(endpoint, workspace)  # an unknown endpoint fails before the baseline
    constraints = resolve_constraints(baseline, workspace) if baseline else None
    if problem_type is None:
        if constraints is None:
            raise ConfigError("give --problem-type or a --baseline that tells it")
        problem_type = baseline_problem_type(constraints)
    outcome = run_model_quality(
        endpoint, workspace=workspace, problem_type=problem_type, ground_truth=ground_truth,
        baseline_constraints=constraints, start=window_start, end=window_end, now=now,
        output=output, inference_attribute=inference_attribute,
        probability_attribute=probability_attribute,
        probability_threshold=probability_threshold, positive_label=positive_label)
    execution = outcome.execution
    metrics = _metrics(execution.statistics)
    if as_json:
        _print_json({"ExecutionStatus": execution.status, "Output": str(outcome.output),
                     "Constraints": str(constraints) if constraints else None,
                     "Window": outcome.window, "Metrics": metrics,
                     "Violations": execution.violations})
        return
    w = outcome.window
    say(f"{execution.status}: {w['Labelled']} labelled of {w['Predictions']} predictions "
         f"({w['UnmatchedPredictions']} without ground truth, {w['UnmatchedGroundTruth']} "
         f"labels matching no prediction) -> {outcome.output}")
    for name, entry in metrics.items():
        std = entry["standard_deviation"]
        say(f"  {name:<44} {_number(entry['value'])}"
             + (f" +/- {std:.4g}" if isinstance(std, float) else ""))
    for v in execution.violations:
        say(f"  violation {v['metric_name']}: {v['description']}")


def _metrics(statistics: dict[str, Any]) -> dict[str, Any]:
    from tabpilot.monitor.quality_metrics import metrics_of

    _, section = metrics_of(statistics)
    return {k: v for k, v in section.items() if isinstance(v, dict) and "value" in v}


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
