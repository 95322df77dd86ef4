"""`tabpilot forecast | forecast-predict`: a forecasting job, and forecasts from its model.

Argument handling and output only: the job is `forecast/job.py`, the model
`forecast/model.py`. Forecasts go to stdout as CSV unless `--output` names a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tabpilot.cli import JsonFlag, Workspace, _print_json, app, err, out


@app.command()
def forecast(
    data: Annotated[str, typer.Argument(help="table of the series: path or URI")],
    target: Annotated[str, typer.Option("--target", "-t", help="numeric column to forecast")],
    timestamp: Annotated[str, typer.Option(help="the rows' date or time column")],
    horizon: Annotated[int, typer.Option(help="periods to forecast (ForecastHorizon)")],
    frequency: Annotated[str, typer.Option(
        help="ForecastFrequency: 1-59min, 1-23H, 1-6D, 1-4W, 1-11M, 1Y")],
    item_id: Annotated[str | None, typer.Option(
        help="column naming each series (default: the table is one series)")] = None,
    grouping: Annotated[str | None, typer.Option(
        help="comma list of up to 5 columns that split items further")] = None,
    quantiles: Annotated[str, typer.Option(help="comma list, 0.01-0.99 or p10")] = "0.1,0.5,0.9",
    objective: Annotated[str, typer.Option(
        help="AverageWeightedQuantileLoss | WAPE | MASE | MAPE | RMSE")] = "AverageWeightedQuantileLoss",
    aggregation: Annotated[str | None, typer.Option(
        help="sum | avg | first | min | max: combine rows that fall in one period")] = None,
    middlefill: Annotated[str, typer.Option(
        help="gaps inside a series: zero | value | mean | median | min | max | none")] = "zero",
    backfill: Annotated[str, typer.Option(
        help="periods missing at a series' end, up to the latest end")] = "zero",
    frontfill: Annotated[str, typer.Option(
        help="periods missing at a series' start, from the earliest start")] = "none",
    fill_value: Annotated[float | None, typer.Option(help="the constant of 'value'")] = None,
    candidates: Annotated[str | None, typer.Option(
        help="comma list, e.g. AutoETS,LightGBM (default: all that fit the data)")] = None,
    windows: Annotated[int, typer.Option(help="backtest windows of --horizon points")] = 3,
    time_limit: Annotated[float, typer.Option(help="seconds for the whole job")] = 300,
    name: Annotated[str | None, typer.Option(help="job name (default: generated)")] = None,
    holidays: Annotated[str | None, typer.Option(
        help="country code (US, GB, DE...): its public holidays as a feature (HolidayConfig)")
    ] = None,
    covariates: Annotated[str | None, typer.Option(
        help="comma list of known-in-advance columns (prices, promotions, a store's type): "
             "features of the LightGBM candidate; forecasts then need their future values. "
             "A column that is not numbers is categorical")] = None,
    categorical: Annotated[str | None, typer.Option(
        help="comma list of covariates to treat as categories even though they are numbers "
             "(codes such as a weather code)")] = None,
    futurefill: Annotated[str | None, typer.Option(
        help="fill missing future covariate values: zero | value | mean | median | min | max "
             "| none (default: refuse a forecast request that lacks them)")] = None,
    covariate_fill: Annotated[list[str] | None, typer.Option(
        "--covariate-fill", help="one covariate's rules, repeatable: "
        "COLUMN:KEY=METHOD[,KEY=METHOD] with KEY frontfill | middlefill | backfill | "
        "futurefill | value | aggregation, e.g. price:futurefill=mean,middlefill=median")
    ] = None,
    notebook: Annotated[bool, typer.Option(
        "--notebook/--no-notebook",
        help="execute DataExploration.ipynb at the end when the time limit allows")] = True,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="also write the forecast after the table's end to this CSV")] = None,
    workspace: Workspace = None,
    as_json: JsonFlag = False,
) -> None:
    """Forecast time series: backtest statistical and LightGBM candidates, ensemble them."""
    from tabpilot.config import workspace_path
    from tabpilot.data import read_table
    from tabpilot.forecast.job import fit
    from tabpilot.forecast.request import ForecastRequest

    request = ForecastRequest.build(
        target=target, timestamp=timestamp, item_id=item_id,
        grouping=grouping.split(",") if grouping else [], frequency=frequency, horizon=horizon,
        quantiles=quantiles, objective=objective, aggregation=aggregation,
        filling={"middlefill": middlefill, "backfill": backfill, "frontfill": frontfill,
                 "value": fill_value},
        candidates=candidates.split(",") if candidates else None, n_windows=windows,
        time_limit=time_limit, name=name, execute_notebook=notebook,
        holiday_country=holidays,
        **covariate_settings(covariates, futurefill, covariate_fill or [], categorical))
    table = read_table(data)
    result = fit(table, request, workspace_path(workspace), input_uri=data)
    if output is not None:
        from tabpilot.forecast.model import load

        predictor, _ = load(result.model_dir)
        predictor.predict(table).to_csv(output, index=False)
    if as_json:
        _print_json({"AutoMLJobName": result.name, "BestCandidate": result.best,
                     "ObjectiveMetric": result.objective, "ElapsedSeconds": round(result.seconds, 1),
                     "ModelLocation": str(result.model_dir), "Notes": result.notes,
                     "Leaderboard": result.leaderboard.to_dict(orient="records")})
        return
    _show_board(result.leaderboard, result.objective)
    for note in result.notes:
        err.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    out.print(f"job [bold]{result.name}[/]: Completed in {result.seconds:.1f}s; "
              f"best {result.best}")
    out.print(f"model: {result.model_dir}", soft_wrap=True, markup=False, highlight=False)
    if output is not None:
        out.print(f"forecast: {output}", soft_wrap=True, markup=False, highlight=False)


def covariate_settings(names: str | None, futurefill: str | None, rules: list[str],
                       categorical: str | None = None) -> dict:
    """`--covariates`, `--futurefill`, `--covariate-fill` and `--categorical` as
    ForecastRequest fields (covariates, covariate_filling, covariate_aggregation,
    covariate_categories); ConfigError for bad syntax."""
    from tabpilot.errors import ConfigError

    columns = [c.strip() for c in (names or "").split(",") if c.strip()]
    categories = [c.strip() for c in (categorical or "").split(",") if c.strip()]
    if (futurefill or rules or categories) and not columns:
        raise ConfigError("--futurefill, --covariate-fill and --categorical need --covariates "
                          "(the columns known in advance)")
    filling: dict[str, dict] = {c: {"futurefill": futurefill} for c in columns if futurefill}
    aggregation: dict[str, str] = {}
    for rule in rules:
        column, sep, body = rule.partition(":")
        pairs = [p.partition("=") for p in body.split(",")] if sep else []
        if not sep or not pairs or any(not eq or not k.strip() or not v.strip()
                                       for k, eq, v in pairs):
            raise ConfigError(f"--covariate-fill {rule!r} is not COLUMN:KEY=METHOD[,KEY=METHOD], "
                              "e.g. price:futurefill=mean,middlefill=zero")
        for key, _, value in pairs:
            key, value = key.strip(), value.strip()
            if key == "aggregation":
                aggregation[column.strip()] = value
            elif key == "value":
                try:
                    filling.setdefault(column.strip(), {})["value"] = float(value)
                except ValueError:
                    raise ConfigError(f"--covariate-fill {rule!r}: value {value!r} is not a "
                                      "number") from None
            elif key in ("frontfill", "middlefill", "backfill", "futurefill"):
                filling.setdefault(column.strip(), {})[key] = value
            else:
                raise ConfigError(f"--covariate-fill {rule!r}: unknown key {key!r}; use "
                                  "frontfill, middlefill, backfill, futurefill, value or "
                                  "aggregation")
    return {"covariates": columns, "covariate_filling": filling,
            "covariate_aggregation": aggregation,
            "covariate_categories": {c: [] for c in categories}}


_HEADERS = {"AverageWeightedQuantileLoss": "wQL", "fit_seconds": "fit s"}


def _show_board(board, objective: str) -> None:
    """The leaderboard; candidate names are never cut (the metrics' headers are short)."""
    board = board.drop(columns="objective")  # shown as the starred column instead
    table = Table(title="backtest, lower is better (* objective; wQL: AverageWeightedQuantileLoss)")
    for column in board.columns:
        if column == "candidate":
            table.add_column(column, no_wrap=True, min_width=int(board[column].str.len().max()))
        else:
            star = "*" if column == objective else ""
            table.add_column(_HEADERS.get(column, column) + star, justify="right", no_wrap=True)
    for _, row in board.iterrows():
        table.add_row(*[str(row[c]) if c in ("candidate", "covariates") else f"{row[c]:.3g}"
                        for c in board.columns])
    out.print(table)


@app.command("forecast-predict")
def forecast_predict(
    job: Annotated[str, typer.Argument(help="forecasting job name or its model directory")],
    history: Annotated[str, typer.Argument(
        help="table of each item's recent history (the training table's columns)")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="CSV file to write (default: stdout)")] = None,
    future: Annotated[str | None, typer.Option(
        help="table of the covariates' future values (keys, timestamp, covariates) when the "
             "model has covariates and HISTORY does not hold them as rows with an empty "
             "target")] = None,
    workspace: Workspace = None,
) -> None:
    """Forecast the horizon after each item's history: mean and quantiles, as CSV."""
    import sys

    from tabpilot.automl import model_directory
    from tabpilot.data import read_table
    from tabpilot.forecast.model import load

    predictor, _ = load(model_directory(job, None, workspace))
    frame = predictor.predict(read_table(history),
                              read_table(future) if future is not None else None)
    frame.to_csv(output if output is not None else sys.stdout, index=False)
    if output is not None:
        err.print(f"{len(frame)} rows -> {output}", markup=False, highlight=False)


def show_description(desc: dict) -> None:
    """`tabpilot describe`'s lines particular to a forecasting job (after the common ones)."""
    cfg = desc["AutoMLProblemTypeConfig"]["TimeSeriesForecastingJobConfig"]
    series = cfg["TimeSeriesConfig"]
    item = series.get("ItemIdentifierAttributeName")
    out.print(f"[bold]Target[/]: {series['TargetAttributeName']} (TimeSeriesForecasting, "
              f"{cfg['ForecastHorizon']} x {cfg['ForecastFrequency']} ahead"
              f"{f', items by {item}' if item else ''}, quantiles "
              f"{','.join(cfg['ForecastQuantiles'])}), objective "
              f"{desc['AutoMLJobObjective']['MetricName']}", soft_wrap=True)
    best = desc["BestCandidate"]
    if best:
        value = best["FinalAutoMLJobObjectiveMetric"]["Value"]
        members = " + ".join((best.get("Hyperparameters") or {}).get("members") or [])
        out.print(f"BestCandidate: {best['CandidateName']}"
                  f"{f' of {members}' if members else ''} = {value:.5g} "
                  f"(backtest), model at {best['ModelLocation']}", soft_wrap=True,
                  markup=False, highlight=False)
    if desc.get("BacktestResultsLocation"):
        out.print(f"BacktestResults: {desc['BacktestResultsLocation']}", soft_wrap=True,
                  markup=False, highlight=False)


def report_forecast(row, as_json: bool, say) -> None:
    """`tabpilot report` of a forecasting job: execute its DataExploration notebook (the
    analysis, backtest forecasts and plots were written by the job)."""
    import time

    from tabpilot.forecast.notebook import exploration_notebook

    say("executing DataExploration.ipynb...")
    started = time.time()
    notebook = exploration_notebook(Path(row.job_dir))
    say(f"DataExploration.ipynb executed in {time.time() - started:.1f}s")
    if as_json:
        _print_json({"JobDirectory": row.job_dir, "DataExplorationNotebookLocation": str(notebook),
                     "Candidates": {}})
        return
    out.print(f"notebook: {notebook}", soft_wrap=True, markup=False, highlight=False)
