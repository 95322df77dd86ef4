"""SageMaker's metrics service (botocore `sagemaker-metrics`, REST-JSON) on `tabpilot serve`:

    PUT  /BatchPutMetrics   {TrialComponentName, MetricData: [{MetricName, Timestamp, Step, Value}]}
    POST /BatchGetMetrics   {MetricQueries: [{MetricName, ResourceArn, MetricStat, Period, XAxisType}]}

so `AWS_ENDPOINT_URL_SAGEMAKER_METRICS` can point at the server and the SDK's
`run.log_metric` lands here. The values go into the trial component's `trial-metrics` row
(`experiments/series.py`: exact running summaries, the points for charts), under the same
lock as every other write to experiment rows; DescribeTrialComponent and Search report the
summaries (Min, Max, Avg, StdDev, Last, Count) as SageMaker does. Requests are checked
against the service model; the guard (token or SigV4 off loopback) and the body cap apply
as on every route, and a request body is at most `MAX_BODY` here (10 data points need far
less).
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from tabpilot.api import experiments as ex
from tabpilot.api.context import ApiContext
from tabpilot.api.shapes import ApiError, shape, validate
from tabpilot.experiments import series
from tabpilot.serving.limits import control_plane_error
from tabpilot.serving.observe import tag

log = logging.getLogger("tabpilot.api.metrics")
SERVICE = "sagemaker-metrics"
MAX_BODY = 256 * 1024


def put_metrics(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    """BatchPutMetrics: the data points added to the component's series."""
    name = p["TrialComponentName"]
    with ex.LOCK:
        component = ex.get(ctx, ex.COMPONENT, name)
        row = ctx.store.find_resource(ex.METRICS, component.name)
        kept = dict((row.spec.get("metrics") or {}) if row else {})
        grouped: dict[str, list[tuple[float, int | None, float]]] = {}
        for datum in p["MetricData"]:
            grouped.setdefault(datum["MetricName"], []).append(
                (datum["Timestamp"], datum.get("Step"), datum["Value"]))
        for metric, points in grouped.items():
            kept[metric] = series.add(kept.get(metric), points)
        spec = {"name": component.spec["name"], "metrics": kept}
        if row is None:
            ctx.store.add_resource(ex.METRICS, component.name, spec)
        else:
            ctx.store.update_resource(ex.METRICS, component.name, spec=spec)
    return {}


def get_metrics(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    """BatchGetMetrics: each query's statistic per period, or its ValidationError."""
    results = []
    for query in p["MetricQueries"]:
        arn = query["ResourceArn"]
        if ":experiment-trial-component/" not in arn:
            results.append({"Status": "ValidationError", "XAxisValues": [], "MetricValues": [],
                            "Message": f"{arn} is not a trial component's ARN"})
            continue
        row = ctx.store.find_resource(ex.METRICS, ex.key(arn))
        found = ((row.spec.get("metrics") or {}) if row else {}).get(query["MetricName"])
        if found is None:
            results.append({"Status": "Complete", "XAxisValues": [], "MetricValues": []})
            continue
        xs, ys = series.aggregate(found, query["MetricStat"], query["Period"],
                                  query["XAxisType"], query.get("Start"), query.get("End"))
        results.append({"Status": "Complete", "XAxisValues": xs, "MetricValues": ys})
    return {"MetricQueryResults": results}


OPERATIONS = {"BatchPutMetrics": put_metrics, "BatchGetMetrics": get_metrics}


def call(ctx: ApiContext, operation: str, body: bytes) -> dict[str, Any]:
    try:
        params = json.loads(body) if body.strip() else {}
    except ValueError:
        raise ApiError("SerializationException", "the request body is not JSON") from None
    checked = validate(operation, params, SERVICE)
    return shape(operation, OPERATIONS[operation](ctx, checked), SERVICE)


def install(app: FastAPI, ctx: ApiContext) -> None:
    """The metrics service's two routes on the server."""

    async def answer(request: Request, operation: str) -> Response:
        tag(request, operation=operation)
        body = await request.body()
        if len(body) > MAX_BODY:
            return control_plane_error("ValidationException", f"the {operation} body is over "
                                       f"{MAX_BODY // 1024} KiB; send at most 10 data points "
                                       "per call", 413)
        try:
            result = await run_in_threadpool(call, ctx, operation, body)
        except ApiError as exc:
            return control_plane_error(exc.code, exc.message, exc.status)
        except Exception:
            log.exception("%s failed", operation)
            return control_plane_error("InternalFailure", f"{operation} failed inside tabpilot; "
                                       "the server log has the details", 500)
        return JSONResponse(result, headers={"x-amzn-RequestId": str(uuid.uuid4())})

    @app.put("/BatchPutMetrics")
    async def batch_put_metrics(request: Request) -> Response:
        return await answer(request, "BatchPutMetrics")

    @app.post("/BatchGetMetrics")
    async def batch_get_metrics(request: Request) -> Response:
        return await answer(request, "BatchGetMetrics")
