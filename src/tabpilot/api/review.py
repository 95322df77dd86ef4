"""Human review on HTTP: SageMaker's flow definition and human task UI operations, the
A2I runtime's REST routes, and the review page.

    POST /  X-Amz-Target: SageMaker.Create|Describe|List|DeleteFlowDefinition(s),
                          SageMaker.Create|Describe|List|DeleteHumanTaskUi(s)
    POST   /human-loops               StartHumanLoop      \
    GET    /human-loops/{name}        DescribeHumanLoop    |  sagemaker-a2i-runtime
    GET    /human-loops?...           ListHumanLoops       |  (REST-JSON, SigV4 with the
    POST   /human-loops/stop          StopHumanLoop        |   signing name "sagemaker")
    DELETE /human-loops/{name}        DeleteHumanLoop     /
    /review/...                       the review page (review/web.py)

Requests are validated and responses shaped by botocore's models (`api/shapes.py`), so
`boto3.client("sagemaker-a2i-runtime", endpoint_url=...)` parses them as AWS's; errors come
back in REST-JSON's shape (`x-amzn-ErrorType`, `message`). A flow's S3OutputPath goes
through the server's location resolver and must be local (or under --s3-root): outputs are
written as loops complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from tabpilot.api.context import ApiContext
from tabpilot.api.paging import in_time_window, page
from tabpilot.api.shapes import ApiError, operation, shape, validate, validation_error
from tabpilot.errors import NotFoundError, ResourceExistsError, TabpilotError
from tabpilot.review.desk import COMPLETED, OPEN, ReviewDesk, loop_arn
from tabpilot.review.flows import FLOW, LOOP, ROUTE, UI, arn, flow_spec, name_from_arn
from tabpilot.review.routing import Router
from tabpilot.review.web import install_review_page
from tabpilot.serving.limits import runtime_error

log = logging.getLogger("tabpilot.api")
A2I = "sagemaker-a2i-runtime"
OUTPUT_FIELD = "OutputConfig.S3OutputPath"


# -- SageMaker: human task UIs --------------------------------------------------------------
def create_human_task_ui(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["HumanTaskUiName"]
    if ctx.store.find_resource(UI, name) is not None:
        raise ApiError("ResourceInUse", f"Human task UI {arn(UI, name)} already exists.")
    content = p["UiTemplate"]["Content"]
    ctx.store.add_resource(UI, name, {"Tags": p.get("Tags", []), "Content": content,
                                      "ContentSha256": hashlib.sha256(content.encode())
                                      .hexdigest()}, "Active")
    return {"HumanTaskUiArn": arn(UI, name)}


def _found(ctx: ApiContext, kind: str, name: str):
    """The stored resource, or SageMaker's ResourceNotFound naming it by its ARN."""
    row = ctx.store.find_resource(kind, name)
    if row is None:
        label = {UI: "human task UI", FLOW: "flow definition"}[kind]
        raise ApiError("ResourceNotFound", f"Could not find {label} {arn(kind, name)}.")
    return row


def _ui(ctx: ApiContext, name: str):
    return _found(ctx, UI, name)


def describe_human_task_ui(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    row = _ui(ctx, p["HumanTaskUiName"])
    return {"HumanTaskUiArn": arn(UI, row.name), "HumanTaskUiName": row.name,
            "HumanTaskUiStatus": row.status or "Active", "CreationTime": row.created,
            "UiTemplate": {"ContentSha256": row.spec["ContentSha256"]}}


def list_human_task_uis(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    rows = [r for r in ctx.store.list_resources(UI) if in_time_window(p, "CreationTime", r.created)]
    chosen, token = page(rows, p, {"CreationTime": lambda r: r.created}, "CreationTime")
    return {"HumanTaskUiSummaries": [{"HumanTaskUiName": r.name, "HumanTaskUiArn": arn(UI, r.name),
                                      "CreationTime": r.created} for r in chosen],
            "NextToken": token}


def delete_human_task_ui(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["HumanTaskUiName"]
    _ui(ctx, name)
    users = [r.name for r in ctx.store.list_resources(FLOW)
             if name_from_arn(r.spec["request"]["HumanLoopConfig"]["HumanTaskUiArn"], UI) == name]
    if users:
        raise ApiError("ResourceInUse", f"Human task UI {name} is used by flow definition "
                       f"{users[0]}; delete that first.")
    ctx.store.delete_resource(UI, name)
    return {}


# -- SageMaker: flow definitions ------------------------------------------------------------
def create_flow_definition(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["FlowDefinitionName"]
    if ctx.store.find_resource(FLOW, name) is not None:
        raise ApiError("ResourceInUse", f"Flow definition {arn(FLOW, name)} already exists.")
    if p.get("HumanLoopRequestSource") or p.get("HumanLoopActivationConfig"):
        raise validation_error("tabpilot runs custom task types only: leave out "
                               "HumanLoopRequestSource and HumanLoopActivationConfig (route an "
                               "endpoint with `tabpilot review route` instead)")
    config = p.get("HumanLoopConfig")
    if not config:
        raise validation_error("HumanLoopConfig is required: TaskCount, TaskTitle, "
                               "TaskDescription, HumanTaskUiArn, WorkteamArn")
    ui = name_from_arn(config["HumanTaskUiArn"], UI)
    if ctx.store.find_resource(UI, ui) is None:
        raise validation_error(f"HumanLoopConfig.HumanTaskUiArn: no human task UI named {ui}; "
                               "create it with CreateHumanTaskUi first")
    output = p["OutputConfig"]["S3OutputPath"]
    if ctx.locations.is_remote_output(output, OUTPUT_FIELD):
        raise validation_error(f"{OUTPUT_FIELD} must be local or under --s3-root: loop outputs "
                               "are written as loops complete")
    where = ctx.locations.resolve_output(output, OUTPUT_FIELD)
    ctx.store.add_resource(FLOW, name, flow_spec(p, where), "Active")
    return {"FlowDefinitionArn": arn(FLOW, name)}


def _flow(ctx: ApiContext, name: str):
    return _found(ctx, FLOW, name)


def describe_flow_definition(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    row = _flow(ctx, p["FlowDefinitionName"])
    return {**row.spec["request"], "FlowDefinitionArn": arn(FLOW, row.name),
            "FlowDefinitionStatus": row.status or "Active", "CreationTime": row.created}


def list_flow_definitions(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    rows = [r for r in ctx.store.list_resources(FLOW)
            if in_time_window(p, "CreationTime", r.created)]
    chosen, token = page(rows, p, {"CreationTime": lambda r: r.created}, "CreationTime")
    return {"FlowDefinitionSummaries": [
        {"FlowDefinitionName": r.name, "FlowDefinitionArn": arn(FLOW, r.name),
         "FlowDefinitionStatus": r.status or "Active", "CreationTime": r.created}
        for r in chosen], "NextToken": token}


def delete_flow_definition(ctx: ApiContext, p: dict[str, Any]) -> dict[str, Any]:
    name = p["FlowDefinitionName"]
    _flow(ctx, name)
    if any(r.spec["FlowDefinitionName"] == name and r.status in OPEN
           for r in ctx.store.list_resources(LOOP)):
        raise ApiError("ResourceInUse", f"Flow definition {name} has human loops in progress; "
                       "stop them first (StopHumanLoop).")
    routed = [r.name for r in ctx.store.list_resources(ROUTE) if r.spec["flow"] == name]
    if routed:
        raise ApiError("ResourceInUse", f"Endpoint {routed[0]} routes predictions to flow "
                       f"definition {name}; remove the route first (`tabpilot review route "
                       f"{routed[0]} --remove`).")
    ctx.store.delete_resource(FLOW, name)
    return {}


OPERATIONS = {
    "CreateHumanTaskUi": create_human_task_ui, "DescribeHumanTaskUi": describe_human_task_ui,
    "ListHumanTaskUis": list_human_task_uis, "DeleteHumanTaskUi": delete_human_task_ui,
    "CreateFlowDefinition": create_flow_definition,
    "DescribeFlowDefinition": describe_flow_definition,
    "ListFlowDefinitions": list_flow_definitions,
    "DeleteFlowDefinition": delete_flow_definition,
}


# -- the A2I runtime --------------------------------------------------------------------------
def _describe_loop(desk: ReviewDesk, name: str) -> dict[str, Any]:
    row = desk.get(name)
    out: dict[str, Any] = {
        "CreationTime": row.created, "HumanLoopStatus": row.status, "HumanLoopName": row.name,
        "HumanLoopArn": loop_arn(row.name),
        "FlowDefinitionArn": arn(FLOW, row.spec["FlowDefinitionName"]),
        "FailureReason": row.failure_reason}
    if row.status == COMPLETED:
        out["HumanLoopOutput"] = {"OutputS3Uri": row.spec["OutputS3Uri"]}
    return out


def _list_loops(desk: ReviewDesk, p: dict[str, Any]) -> dict[str, Any]:
    flow = name_from_arn(p["FlowDefinitionArn"], FLOW)
    if desk.store.find_resource(FLOW, flow) is None:
        raise NotFoundError(f"Could not find flow definition {p['FlowDefinitionArn']}.")
    rows = [r for r in desk.loops(flow) if in_time_window(p, "CreationTime", r.created)]
    chosen, token = page(rows, p, {"CreationTime": lambda r: r.created}, "CreationTime",
                         default_size=100)
    return {"HumanLoopSummaries": [
        {"HumanLoopName": r.name, "HumanLoopStatus": r.status, "CreationTime": r.created,
         "FailureReason": r.failure_reason,
         "FlowDefinitionArn": arn(FLOW, r.spec["FlowDefinitionName"])} for r in chosen],
        "NextToken": token}


def _start_loop(desk: ReviewDesk, p: dict[str, Any]) -> dict[str, Any]:
    flow = name_from_arn(p["FlowDefinitionArn"], FLOW)
    if desk.store.find_resource(FLOW, flow) is None:
        raise NotFoundError(f"Could not find flow definition {p['FlowDefinitionArn']}.")
    row = desk.start(p["HumanLoopName"], flow, p["HumanLoopInput"]["InputContent"],
                     p.get("DataAttributes"))
    return {"HumanLoopArn": loop_arn(row.name)}


def _a2i_error(exc: Exception) -> JSONResponse:
    if isinstance(exc, ApiError):
        code, status, message = exc.code, exc.status, exc.message
    elif isinstance(exc, NotFoundError):
        code, status, message = "ResourceNotFoundException", 404, str(exc)
    elif isinstance(exc, ResourceExistsError):
        code, status, message = "ConflictException", 409, str(exc)
    else:
        code, status, message = "ValidationException", 400, str(exc)
    return runtime_error(message, status, code)


def _query(op: str, request: Request) -> dict[str, Any]:
    """Query parameters as the operation's members (names and integer types)."""
    members = operation(op, A2I).input_shape.members
    out: dict[str, Any] = {}
    for member, shape_ in members.items():
        where = shape_.serialization
        if where.get("location") != "querystring" or where["name"] not in request.query_params:
            continue
        value: Any = request.query_params[where["name"]]
        if shape_.type_name == "integer":
            try:
                value = int(value)
            except ValueError:
                pass  # validation names it
        out[member] = value
    return out


def install(app: FastAPI, ctx: ApiContext) -> ReviewDesk:
    """Add the A2I runtime's routes and the review page; routed endpoints' predictions go
    to the review desk through a router that runs as the server's background work."""
    desk = ReviewDesk(ctx.store, ctx.workspace)
    router = Router(desk, ctx.store)
    if ctx.registry is not None:
        ctx.registry.tap = router.tap
    background = getattr(app.state, "background", None)
    if background is not None:
        background.append(router.run)
    app.state.review = desk
    app.state.review_router = router

    async def answer(op: str, params: dict[str, Any], work) -> Response:
        try:
            checked = validate(op, params, A2I)
            result = await run_in_threadpool(work, checked)
            body = shape(op, result, A2I)
        except (ApiError, TabpilotError) as exc:
            return _a2i_error(exc)
        except Exception:
            log.exception("A2I %s failed", op)
            return runtime_error(f"{op} failed inside tabpilot; the server log has the "
                                 "details", 500, "InternalServerException")
        return JSONResponse(body)

    async def body_of(request: Request) -> dict[str, Any] | Response:
        raw = await request.body()
        try:
            params = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return runtime_error("the request body is not JSON", 400, "ValidationException")
        return params

    @app.post("/human-loops", include_in_schema=False)
    async def start_human_loop(request: Request) -> Response:
        params = await body_of(request)
        if isinstance(params, Response):
            return params
        return await answer("StartHumanLoop", params, lambda p: _start_loop(desk, p))

    @app.post("/human-loops/stop", include_in_schema=False)
    async def stop_human_loop(request: Request) -> Response:
        params = await body_of(request)
        if isinstance(params, Response):
            return params
        return await answer("StopHumanLoop", params,
                            lambda p: desk.stop(p["HumanLoopName"]) or {})

    @app.get("/human-loops", include_in_schema=False)
    async def list_human_loops(request: Request) -> Response:
        return await answer("ListHumanLoops", _query("ListHumanLoops", request),
                            lambda p: _list_loops(desk, p))

    @app.get("/human-loops/{name}", include_in_schema=False)
    async def describe_human_loop(name: str) -> Response:
        return await answer("DescribeHumanLoop", {"HumanLoopName": name},
                            lambda p: _describe_loop(desk, p["HumanLoopName"]))

    @app.delete("/human-loops/{name}", include_in_schema=False)
    async def delete_human_loop(name: str) -> Response:
        return await answer("DeleteHumanLoop", {"HumanLoopName": name},
                            lambda p: desk.delete(p["HumanLoopName"]) or {})

    install_review_page(app, desk)
    return desk
