"""The SageMaker-compatible control plane, on the same port as the endpoints.

    POST /   X-Amz-Target: SageMaker.<Operation>, application/x-amz-json-1.1  (awsJson 1.1)

and sagemaker-runtime's InvokeEndpoint at POST /endpoints/{name}/invocations, which the
endpoint server already answers. `install(app, ...)` adds both the route and the check of
AWS signatures: with credentials configured every SageMaker request must be signed by one
of them; without, signed-but-unverified requests pass only on loopback with no API token.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from tabpilot.api import hosting, jobs
from tabpilot.api.context import ApiContext
from tabpilot.api.locations import Locations
from tabpilot.api.shapes import ApiError, shape, validate
from tabpilot.api.sigv4 import is_signed, verify
from tabpilot.errors import TabpilotError
from tabpilot.store import Store

log = logging.getLogger("tabpilot.api")
AMZ_JSON = "application/x-amz-json-1.1"
OPERATIONS = {**jobs.OPERATIONS, **hosting.OPERATIONS}
VERIFIED = "tabpilot.verified"  # scope key the token guard honours


def aws_error(exc: ApiError) -> JSONResponse:
    return JSONResponse({"__type": exc.code, "message": exc.message, "Message": exc.message},
                        status_code=exc.status, media_type=AMZ_JSON,
                        headers={"x-amzn-RequestId": str(uuid.uuid4()),
                                 "x-amzn-ErrorType": exc.code})


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
            loopback: bool = True) -> ApiContext:
    registry = getattr(app.state, "registry", None)
    ctx = ApiContext(Store.for_workspace(workspace), workspace, Locations(s3_root), registry)
    credentials = credentials or {}

    @app.middleware("http")
    async def signatures(request: Request, call_next):
        aws_route = request.method == "POST" and (
            request.url.path == "/" or request.url.path.endswith("/invocations"))
        if not aws_route:
            return await call_next(request)
        authorization = request.headers.get("authorization")
        if is_signed(authorization):
            if credentials:
                body = await request.body()
                url = f"{request.url.scheme}://{request.headers.get('host', '')}" \
                      f"{request.scope.get('raw_path', b'/').decode()}" + \
                      (f"?{request.url.query}" if request.url.query else "")
                try:
                    verify(request.method, url, {k.lower(): v for k, v in request.headers.items()},
                           body, credentials)
                except ApiError as exc:
                    return aws_error(exc)
                request.scope[VERIFIED] = True
            elif token or not loopback:
                return aws_error(ApiError("UnrecognizedClientException", "this server checks an "
                                 "API token, not AWS signatures; start it with credentials "
                                 "(--aws-access-key-id, --aws-secret-access-key)", 403))
            else:
                request.scope[VERIFIED] = True  # loopback, no token: unverified is accepted
        elif credentials and request.url.path == "/":
            return aws_error(ApiError("MissingAuthenticationTokenException",
                                      "Missing Authentication Token", 403))
        return await call_next(request)

    @app.post("/")
    async def control_plane(request: Request) -> Response:
        target = request.headers.get("x-amz-target", "")
        prefix, _, operation = target.partition(".")
        try:
            if prefix != "SageMaker" or not operation:
                raise ApiError("UnknownOperationException", "send X-Amz-Target: "
                               "SageMaker.<Operation> with Content-Type " + AMZ_JSON)
            body = await request.body()
            try:
                params = json.loads(body) if body.strip() else {}
            except ValueError:
                raise ApiError("SerializationException", "the request body is not JSON") from None
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
