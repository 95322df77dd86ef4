"""SageMaker Experiments in the Studio: the experiments, and one experiment's runs (its
trials' components: the SDK's `Run`s and training jobs) side by side with their parameters
and last metrics, and one chosen metric across runs as a chart (uPlot, drawn by
experiments.js from a JSON block; the same points as a table under it).

    GET /studio/experiments                       the experiments
    GET /studio/experiments/{name}?metric=M       an experiment's runs and the chart of M
    GET /api/v1/experiments                       the same as JSON
    GET /api/v1/experiments/{name}
    GET /api/v1/experiments/{name}/chart?metric=M

It reads through `api/experiments.py`, the functions the SageMaker facade answers with.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from tabpilot import names
from tabpilot.api import experiments as ex
from tabpilot.api.context import ApiContext
from tabpilot.api.shapes import ApiError
from tabpilot.errors import NotFoundError, TabpilotError
from tabpilot.ui.render import ctx_of, render
from tabpilot.ui.rest import PREFIX, run

router = APIRouter()
MAX_RUNS = 200  # runs shown in the table (the newest)
MAX_SERIES = 12  # runs drawn in the chart (the newest), each with its own colour and dash
MAX_POINTS = 400  # points per run in the chart (thinned evenly beyond)
TABLE_ROWS = 200  # steps in the chart's table


def _experiment(ctx: ApiContext, name: str) -> Any:
    names.check(name, "experiment")
    try:
        return ex.get(ctx, ex.EXPERIMENT, name)
    except ApiError as exc:
        raise NotFoundError(exc.message) from None


def overview(ctx: ApiContext) -> list[dict[str, Any]]:
    """Every experiment, newest first, with its counts of trials and runs."""
    out = []
    for row in sorted(ex.rows(ctx, ex.EXPERIMENT), key=lambda r: r.created, reverse=True):
        record = ex.experiment_record(row)
        out.append({"name": record["ExperimentName"], "display_name": record["DisplayName"],
                    "description": record.get("Description"), "created": row.created,
                    "modified": row.modified, "trials": len(ex.trials_of(ctx, row.name)),
                    "runs": len(ex.components_in(ctx, row.name))})
    return out


def _value(parameter: dict[str, Any]) -> Any:
    return parameter.get("NumberValue", parameter.get("StringValue"))


def detail(ctx: ApiContext, name: str) -> dict[str, Any]:
    """An experiment, its runs (parameters, metric summaries, trials) and the names of
    every parameter and metric they hold."""
    row = _experiment(ctx, name)
    trial_names = {t.name: t.spec["name"] for t in ex.trials_of(ctx, row.name)}
    components = sorted(ex.components_in(ctx, row.name), key=lambda r: r.created,
                        reverse=True)[:MAX_RUNS]
    runs, parameters, metrics = [], set(), set()
    for component in components:
        record = ex.component_record(ctx, component)
        values = {k: _value(v) for k, v in record["Parameters"].items()
                  if not k.startswith("SageMaker.")}
        summaries = {m["MetricName"]: {k: m.get(k) for k in ("Min", "Max", "Avg", "StdDev",
                                                             "Last", "Count")}
                     for m in record["Metrics"]}
        parameters.update(values)
        metrics.update(summaries)
        runs.append({"name": record["TrialComponentName"],
                     "display_name": record["DisplayName"],
                     "status": (record.get("Status") or {}).get("PrimaryStatus"),
                     "source": (record.get("Source") or {}).get("SourceArn"),
                     "trials": [trial_names[t] for t in component.spec.get("trials", [])
                                if t in trial_names],
                     "start": record.get("StartTime"), "end": record.get("EndTime"),
                     "parameters": values, "metrics": summaries})
    experiment = ex.experiment_record(row)
    return {"name": experiment["ExperimentName"], "display_name": experiment["DisplayName"],
            "description": experiment.get("Description"), "created": row.created,
            "trials": sorted(trial_names.values()), "runs": runs,
            "parameter_names": sorted(parameters), "metric_names": sorted(metrics)}


def chart(ctx: ApiContext, name: str, metric: str) -> dict[str, Any]:
    """`metric` of each run (the newest MAX_SERIES that logged it) by step, on one x axis."""
    row = _experiment(ctx, name)
    components = sorted(ex.components_in(ctx, row.name), key=lambda r: r.created,
                        reverse=True)
    series, steps = [], set()
    for component in components:
        points = ex.metric_points(ctx, component, metric)
        if not points:
            continue
        if len(points) > MAX_POINTS:
            stride = len(points) / MAX_POINTS
            points = [points[int(i * stride)] for i in range(MAX_POINTS)] + [points[-1]]
        by_step = dict(points)
        steps.update(by_step)
        series.append({"label": component.spec.get("DisplayName") or component.spec["name"],
                       "points": by_step})
        if len(series) == MAX_SERIES:
            break
    x = sorted(steps)
    return {"metric": metric, "xlabel": "step", "ylabel": metric, "x": x,
            "series": [{"label": s["label"], "y": [s["points"].get(v) for v in x]}
                       for s in series]}


@router.get("/studio/experiments", include_in_schema=False)
async def experiments_page(request: Request) -> Response:
    found = await run_in_threadpool(overview, ctx_of(request))
    return render(request, "experiments.html", nav="experiments", experiments=found)


@router.get("/studio/experiments/{name}", include_in_schema=False)
async def experiment_page(request: Request, name: str, metric: str | None = None) -> Response:
    ctx = ctx_of(request)
    try:
        found = await run_in_threadpool(detail, ctx, name)
    except TabpilotError as exc:
        status = 404 if isinstance(exc, NotFoundError) else 400
        return render(request, "experiment.html", status, nav="experiments", error=str(exc),
                      experiment=None, plot=None, metric=None)
    metric = metric if metric in found["metric_names"] else \
        (found["metric_names"][0] if found["metric_names"] else None)
    plot = await run_in_threadpool(chart, ctx, found["name"], metric) if metric else None
    return render(request, "experiment.html", nav="experiments", error=None,
                  experiment=found, plot=plot, metric=metric, table_rows=TABLE_ROWS)


@router.get(PREFIX + "/experiments", tags=["experiments"])
async def experiments_json(request: Request) -> dict[str, Any]:
    """Every experiment with its counts of trials and runs, newest first."""
    return {"experiments": await run(overview, ctx_of(request))}


@router.get(PREFIX + "/experiments/{name}", tags=["experiments"])
async def experiment_json(request: Request, name: str) -> dict[str, Any]:
    """An experiment's runs: parameters, metric summaries (Min, Max, Avg, StdDev, Last,
    Count) and trials."""
    return await run(detail, ctx_of(request), name)


@router.get(PREFIX + "/experiments/{name}/chart", tags=["experiments"])
async def experiment_chart_json(request: Request, name: str, metric: str) -> dict[str, Any]:
    """One metric of the experiment's runs by step: x, and one y list per run (null where
    a run has no value at that step)."""
    return await run(chart, ctx_of(request), name, metric)
