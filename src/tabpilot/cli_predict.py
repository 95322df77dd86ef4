"""`tabpilot predict | evaluate`: score a table, or measure a model on one with true values.

Predictions go to stdout as CSV unless `--output` names a file, so they pipe into other
tools; every message goes to stderr. Both commands check the table against the model's
input schema first (artifacts/validate.py): a value the model cannot read is an error
naming its row and column, unless `--on-bad-value missing`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tabpilot.cli import JsonFlag, Workspace, _print_json, app, err, out

if TYPE_CHECKING:
    import pandas as pd

OnBadValue = Annotated[str, typer.Option(
    "--on-bad-value", metavar="error|missing",
    help="a value that does not parse for its column (text in a numeric column): "
         "error (exit 2, naming row and column) or missing (read as missing, counted)")]
Candidate = Annotated[str | None, typer.Option(help="candidate (default: the job's best)")]


def _note(message: str) -> None:
    err.print(message, markup=False, highlight=False, soft_wrap=True)


@app.command()
def predict(
    job: Annotated[str, typer.Argument(help="job name or model directory")],
    data: Annotated[str, typer.Argument(help="table to score")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="CSV file to write (default: stdout)")] = None,
    candidate: Candidate = None,
    id_column: Annotated[str | None, typer.Option(
        help="a column of the table to keep beside the predictions (a row id)")] = None,
    join_input: Annotated[bool, typer.Option(
        "--join-input", help="write the table's columns, then the predictions")] = False,
    on_bad_value: OnBadValue = "error",
    workspace: Workspace = None,
) -> None:
    """Score a table with a job's best (or named) model; CSV to stdout or --output.

    Columns: predicted_label; for classification also predicted_probability (the
    probability of the predicted label) and probability_<class> for every class; for a
    binary problem, probability_<positive class> is the probability of the positive
    class (the second of the model's classes, the one F1, precision and recall count).
    """
    import pandas as pd

    from tabpilot.artifacts.validate import CLI_HINT, check_on_bad_value
    from tabpilot.automl import load_model
    from tabpilot.data import read_table
    from tabpilot.errors import DataError, shown
    from tabpilot.serving.codec import prediction_table

    check_on_bad_value(on_bad_value)
    # job: a name, or a model directory's path; load_model checks which, and the names
    model = load_model(job, candidate=candidate, workspace=workspace)
    df = read_table(data)
    if id_column is not None and id_column not in df.columns:
        raise DataError(f"--id-column {shown(id_column)} is not a column of {data}; its "
                        f"columns: {', '.join(map(shown, list(df.columns)[:10]))}"
                        + (" ..." if len(df.columns) > 10 else ""))
    features, found = model.check(df, on_bad_value, hint=CLI_HINT)
    result = prediction_table(model, features)
    if join_input:
        result = pd.concat([df.reset_index(drop=True), result], axis=1)
    elif id_column is not None:
        result.insert(0, id_column, df[id_column].to_numpy())
    _write_csv(result, output)
    if output is not None:
        _note(f"wrote {len(result)} predictions to {output}")
    if found.summary():
        _note(f"note: {found.summary()}")
    target = model.metadata.get("target")
    if target and target in df.columns:
        _note(f"note: the table has the target column {target!r}; to score the predictions "
              f"against it: tabpilot evaluate {job} {data}")


def _write_csv(result: pd.DataFrame, output: Path | None) -> None:
    """To `output` atomically (a temporary name renamed), or to stdout; a closed pipe
    (`| head`) ends the command quietly, as for any Unix filter."""
    if output is None:
        try:
            result.to_csv(sys.stdout, index=False)
            sys.stdout.flush()
        except BrokenPipeError:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    result.to_csv(tmp, index=False)
    tmp.replace(output)


@app.command()
def evaluate(
    job: Annotated[str, typer.Argument(help="job name or model directory")],
    data: Annotated[str, typer.Argument(help="table with the true target values")],
    candidate: Candidate = None,
    target: Annotated[str | None, typer.Option(
        help="the column of true values (default: the job's target)")] = None,
    metric: Annotated[str | None, typer.Option(
        help="objective metric listed first (default: the job's)")] = None,
    confidence: Annotated[float, typer.Option(
        help="share of bootstrap resamples inside the interval")] = 0.95,
    on_bad_value: OnBadValue = "error",
    workspace: Workspace = None,
    as_json: JsonFlag = False,
) -> None:
    """Score a model on a table that has the target: metrics with bootstrap intervals."""
    from tabpilot.artifacts.validate import CLI_HINT, InputReport, check_on_bad_value
    from tabpilot.automl import load_model
    from tabpilot.data import read_table
    from tabpilot.reports.evaluate import evaluate as evaluate_model

    check_on_bad_value(on_bad_value)
    model = load_model(job, candidate=candidate, workspace=workspace)
    result = evaluate_model(model, read_table(data), target, metric, confidence,
                            on_bad_value=on_bad_value, hint=CLI_HINT)
    if as_json:
        _print_json(result)
        return
    out.print(_metrics_table(result, model.metadata.get("candidate") or job, data))
    if result["rows_without_target"]:
        _note(f"note: {result['rows_without_target']} row(s) without a target value were "
              "left out")
    check = result["input_check"]
    summary = InputReport(check["rows"], check["badValues"], check["unseenCategories"]).summary()
    if summary:
        _note(f"note: {summary}")


def _metrics_table(result: dict[str, Any], name: str, data: str) -> Table:
    share = f"{result['confidence']:.0%}"
    positive = f"positive class {result['positive_class']!r}; " \
        if "positive_class" in result else ""
    table = Table(title=f"{name} on {data} ({result['rows']} rows)",
                  caption=f"* objective; {positive}interval: central {share} of "
                          f"{result['rounds']} bootstrap resamples")
    for column, justify in (("metric", "left"), ("value", "right"), (f"{share} interval", "right")):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for metric, v in result["metrics"].items():
        mark = " *" if metric == result["objective"] else ""
        interval = "-" if v["lower"] != v["lower"] else f"{v['lower']:.4f} - {v['upper']:.4f}"
        table.add_row(metric + mark, f"{v['value']:.4f}", interval)
    return table
