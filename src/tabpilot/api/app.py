"""The SageMaker-compatible control plane, on the same port as the endpoints.

    POST /   X-Amz-Target: SageMaker.<Operation>, application/x-amz-json-1.1  (awsJson 1.1)

and sagemaker-runtime's InvokeEndpoint at POST /endpoints/{name}/invocations, which the
endpoint server already answers. `install(app, ...)` adds the route and gives the server's
guard (serving/guard.py) the AWS credentials: with credentials or a token configured every
request must carry a valid signature or the token; with neither, the server is loopback only.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from tabpilot.api import (
    experiments,
    hosting,
    jobs,
    metrics_service,
    monitoring,
    processing,
    review,
    search,
    sts,
    training,
    tuning,
)
from tabpilot.api.context import ApiContext
from tabpilot.api.locations import Locations
from tabpilot.api.shapes import ApiError, shape, validate
from tabpilot.errors import TabpilotError
from tabpilot.serving.guard import LOOPBACK_HOSTS, VERIFIED
from tabpilot.serving.limits import control_plane_error
from tabpilot.serving.observe import tag
from tabpilot.store import Store

log = logging.getLogger("tabpilot.api")
AMZ_JSON = "application/x-amz-json-1.1"
OPERATIONS = {**jobs.OPERATIONS, **hosting.OPERATIONS, **monitoring.OPERATIONS,
              **review.OPERATIONS, **training.OPERATIONS, **tuning.OPERATIONS,
              **processing.OPERATIONS, **experiments.OPERATIONS, **search.OPERATIONS}


def aws_error(exc: ApiError) -> JSONResponse:
    return control_plane_error(exc.code, exc.message, exc.status)


def call(ctx: ApiContext, operation: str, params: object) -> dict:
    """Validate, run and shape one operation; every failure comes back as an ApiError."""
    handler = OPERATIONS.get(operation)
    if handler is None:
        raise ApiError("UnknownOperationException", f"tabpilot does not implement "
                       f"SageMaker.{operation}; it implements {', '.join(sorted(OPERATIONS))}")
    checked = validate(operation, params)
    try:
        return shape(operation, handler(ctx, checked))
    except TabpilotError as exc:
        raise ApiError("ValidationException", str(exc)) from None


def install(app: FastAPI, workspace: Path, s3_root: str | Path | None = None,
            credentials: dict[str, str] | None = None, token: str | None = None,
            allow_roots: list[str] | None = None, trust_model_roots: list[str] | None = None,
            allow_processing_scripts: bool = False) -> ApiContext:
    """Add the control plane to a `server_app`; its guard (serving/guard.py) then also
    accepts requests signed with `credentials` (SigV4), on every route.
    `allow_processing_scripts`: unauthenticated callers on a loopback Host may run
    processing scripts (api/processing.py `admit`); authenticated ones always may."""
    registry = getattr(app.state, "registry", None)
    locations = Locations(workspace, s3_root, allow_roots, trust_model_roots)
    ctx = ApiContext(Store.for_workspace(workspace), workspace, locations, registry)
    if registry is not None:  # endpoints may serve a built-in algorithm's model.tar.gz
        registry.load = training.loader(registry.load)
    background = getattr(app.state, "background", None)
    if background is not None:  # the server runs the monitoring schedules while it runs
        from tabpilot.api.scheduler import Scheduler

        background.append(Scheduler(ctx).run)
    review.install(app, ctx)  # the A2I runtime's routes, the review page, review routing
    metrics_service.install(app, ctx)  # sagemaker-metrics' BatchPutMetrics / BatchGetMetrics
    access = getattr(app.state, "access", None)
    if access is not None:
        access.credentials.update(credentials or {})
        if token and not access.token:
            access.token = token

    @app.post("/")
    async def control_plane(request: Request) -> Response:
        target = request.headers.get("x-amz-target", "")
        if sts.is_query_call(request.headers.get("content-type"), target):  # STS and IAM
            query = sts.parse(await request.body())
            tag(request, operation=sts.action_of(query))
            return sts.answer(query, request.headers.get("authorization"))
        prefix, _, operation = target.partition(".")
        try:
            if prefix != "SageMaker" or not operation:
                raise ApiError("UnknownOperationException", "send X-Amz-Target: "
                               "SageMaker.<Operation> with Content-Type " + AMZ_JSON)
            if operation in OPERATIONS:  # a made-up name adds no metric series
                tag(request, operation=operation)
            body = await request.body()
            try:
                params = json.loads(body) if body.strip() else {}
            except ValueError:
                raise ApiError("SerializationException", "the request body is not JSON") from None
            if operation == "CreateProcessingJob":  # a script is code run on the server
                host = request.headers.get("host", "")
                host = host[1:host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
                processing.admit(params, bool(request.scope.get(VERIFIED)),
                                 host.lower() in LOOPBACK_HOSTS, allow_processing_scripts)
            result = await run_in_threadpool(call, ctx, operation, params)
        except ApiError as exc:
            return aws_error(exc)
        except Exception:
            log.exception("SageMaker.%s failed", operation)
            return aws_error(ApiError("InternalFailure", f"SageMaker.{operation} failed inside "
                                      "tabpilot; the server log has the details", 500))
        return Response(json.dumps(result), media_type=AMZ_JSON,
                        headers={"x-amzn-RequestId": str(uuid.uuid4())})

    return ctx
