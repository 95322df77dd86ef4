"""Endpoints: the list with live request statistics, deploy / swap / undeploy, and an
endpoint's page with "Try it" and its latest captured requests.

    GET  /studio/endpoints                    the list, the deploy form
    GET  /studio/endpoints?fragment=rows      the list's rows alone (htmx polls them)
    POST /studio/endpoints                    deploy (form)
    GET  /studio/endpoints/{name}             one endpoint
    POST /studio/endpoints/{name}/swap        a new model into the running endpoint (form)
    POST /studio/endpoints/{name}/undeploy    (form)
    POST /studio/endpoints/{name}/try         one row through the endpoint (form; htmx gets
                                              the answer alone, a plain form the page)
    GET|POST /api/v1/endpoints, GET|PUT|DELETE /api/v1/endpoints/{name},
    POST /api/v1/endpoints/{name}/invocations, GET /api/v1/endpoints/{name}/captures

Deploy, swap and undeploy are the SageMaker facade's operations (ui/hosting.py); the
statistics are the server's Prometheus metrics over the last minutes (ui/live_stats.py);
a try-it prediction is the invocation route's own function (ui/tryit.py). Every
state-changing route depends on `require_csrf`.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from tabpilot.errors import NotFoundError, TabpilotError
from tabpilot.serving.limits import Full
from tabpilot.serving.observe import tag
from tabpilot.ui import hosting, tryit
from tabpilot.ui.auth import require_csrf
from tabpilot.ui.live_stats import Stats, window_of
from tabpilot.ui.render import ctx_of, render, url_for_page
from tabpilot.ui.render import fragment as render_fragment
from tabpilot.ui.rest import PREFIX, ApiFailure, run

router = APIRouter()
CSRF = [Depends(require_csrf)]


def _stats(request: Request) -> dict[str, Stats]:
    window = window_of(request.app)
    return window.stats() if window is not None else {}


def _moment(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC)


def _row(view: hosting.EndpointView, stats: Stats | None) -> dict[str, Any]:
    stats = stats or Stats(0, 0, None, None, None)
    return {"name": view.name, "job": view.job, "candidate": view.candidate,
            "status": view.status, "failure": view.failure, "version": view.version,
            "created": _moment(view.created), "since": _moment(view.since),
            "capture_percent": view.capture_percent, "stats": stats}


def _rows(request: Request) -> list[dict[str, Any]]:
    ctx = ctx_of(request)
    stats = _stats(request)
    return [_row(v, stats.get(v.name)) for v in hosting.endpoint_views(ctx)]


def _split_choice(value: str) -> tuple[str, str]:
    job, sep, candidate = value.partition("/")
    if not sep or not job or not candidate:
        raise hosting.StudioError("choose the model to serve: a job and one of its candidates")
    return job, candidate


def _redirect(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(url_for_page(request, path), 303)


# -- pages ------------------------------------------------------------------------------
@router.get("/studio/endpoints", response_class=HTMLResponse, include_in_schema=False)
async def endpoints_page(request: Request, fragment: str | None = None) -> Response:
    """The page; `?fragment=rows`: the table's rows alone, which the page polls (a path
    of its own would shadow an endpoint of that name)."""
    if fragment == "rows":
        return await _rows_fragment(request)
    return await _list_page(request)


async def _list_page(request: Request, error: str | None = None, status: int = 200,
                     form: dict[str, Any] | None = None) -> Response:
    ctx = ctx_of(request)
    rows = await run_in_threadpool(_rows, request)
    choices = await run_in_threadpool(hosting.deployable, ctx)
    return render(request, "endpoints.html", status_code=status, nav="endpoints", rows=rows,
                  choices=choices, error=error, form=form or {}, server=_server(request))


def _server(request: Request) -> str:
    """This server's address as a client reaches it (for the code shown on the pages)."""
    return str(request.base_url).rstrip("/")


async def _rows_fragment(request: Request) -> HTMLResponse:
    rows = await run_in_threadpool(_rows, request)
    return HTMLResponse(render_fragment(request, "endpoints_rows.html", rows=rows),
                        headers={"Cache-Control": "no-store"})


@router.post("/studio/endpoints", dependencies=CSRF, include_in_schema=False)
async def deploy_form(request: Request, endpoint: Annotated[str, Form()] = "",
                      model: Annotated[str, Form()] = "",
                      capture_percent: Annotated[float, Form()] = 0.0) -> Response:
    ctx = ctx_of(request)
    try:
        job, candidate = _split_choice(model)
        name = await run_in_threadpool(hosting.deploy, ctx, endpoint.strip(), job, candidate,
                                       capture_percent)
    except TabpilotError as exc:
        return await _list_page(request, error=str(exc), status=400,
                                form={"endpoint": endpoint, "model": model,
                                      "capture_percent": capture_percent})
    return _redirect(request, f"/studio/endpoints/{name}")


async def _endpoint_context(request: Request, name: str) -> dict[str, Any]:
    ctx = ctx_of(request)

    def gather() -> dict[str, Any]:
        view = hosting.endpoint_view(ctx, name)
        live = ctx.registry.loaded(name) if ctx.registry is not None else None
        columns = _columns(live, view)
        return {"endpoint": _row(view, _stats(request).get(name)), "view": view,
                "columns": columns, "sample": tryit.sample_row(ctx, view.job, columns),
                "captures": tryit.latest_captures(view.capture_dir),
                "choices": hosting.deployable(ctx)}

    return await run_in_threadpool(gather)


def _columns(live: Any, view: hosting.EndpointView) -> list[str]:
    """The model's input columns, in the order a header-less CSV row gives them."""
    from tabpilot.serving.codec import input_columns

    if live is not None:
        return input_columns(live.model)
    meta = Path(view.model_dir) / "metadata.json"
    try:
        return list(json.loads(meta.read_text()).get("features") or [])
    except (OSError, ValueError):
        return []


@router.get("/studio/endpoints/{name}", response_class=HTMLResponse, include_in_schema=False)
async def endpoint_page(request: Request, name: str, fragment: str | None = None) -> Response:
    """The page; `?fragment=stats`: its traffic figures alone, which the page polls."""
    if fragment == "stats":
        try:
            view = await run_in_threadpool(hosting.endpoint_view, ctx_of(request), name)
        except TabpilotError as exc:
            return HTMLResponse(f"<p>{html.escape(str(exc))}</p>",
                                404 if isinstance(exc, NotFoundError) else 400)
        endpoint = _row(view, _stats(request).get(name))
        return HTMLResponse(render_fragment(request, "endpoint_stats.html", endpoint=endpoint),
                            headers={"Cache-Control": "no-store"})
    return await _endpoint_page(request, name)


async def _endpoint_page(request: Request, name: str, answer: tryit.Answer | None = None,
                         row: str | None = None, accept: str = tryit.ACCEPTS[0],
                         error: str | None = None, status: int = 200) -> Response:
    try:
        context = await _endpoint_context(request, name)
    except TabpilotError as exc:  # no such endpoint (404), or not a valid name (400)
        return render(request, "endpoint.html",
                      status_code=404 if isinstance(exc, NotFoundError) else 400,
                      nav="endpoints", missing=str(exc), name=name)
    if row is not None:
        context["sample"] = row
    return render(request, "endpoint.html", status_code=status, nav="endpoints", missing=None,
                  name=name, answer=answer, accept=accept, accepts=tryit.ACCEPTS, error=error,
                  server=_server(request), **context)


@router.post("/studio/endpoints/{name}/swap", dependencies=CSRF, include_in_schema=False)
async def swap_form(request: Request, name: str,
                    model: Annotated[str, Form()] = "") -> Response:
    try:
        job, candidate = _split_choice(model)
        await run_in_threadpool(hosting.swap, ctx_of(request), name, job, candidate)
    except TabpilotError as exc:
        return await _endpoint_page(request, name, error=str(exc), status=400)
    return _redirect(request, f"/studio/endpoints/{name}")


@router.post("/studio/endpoints/{name}/undeploy", dependencies=CSRF, include_in_schema=False)
async def undeploy_form(request: Request, name: str) -> Response:
    try:
        await run_in_threadpool(hosting.undeploy, ctx_of(request), name)
    except TabpilotError as exc:
        return await _endpoint_page(request, name, error=str(exc), status=400)
    return _redirect(request, "/studio/endpoints")


@router.post("/studio/endpoints/{name}/try", dependencies=CSRF, include_in_schema=False)
async def try_form(request: Request, name: str, row: Annotated[str, Form()] = "",
                   accept: Annotated[str, Form()] = tryit.ACCEPTS[0]) -> Response:
    accept = accept if accept in tryit.ACCEPTS else tryit.ACCEPTS[0]
    answer = await _invoke(request, name, row.strip().encode("utf-8"), "text/csv", accept)
    if request.headers.get("hx-request"):
        # `HX-Trigger: tried`: the traffic figures above refresh at once, counting it
        return HTMLResponse(render_fragment(request, "endpoint_answer.html", answer=answer),
                            headers={"Cache-Control": "no-store", "HX-Trigger": "tried"})
    return await _endpoint_page(request, name, answer=answer, row=row, accept=accept,
                                status=200 if answer.ok else 400)


async def _invoke(request: Request, name: str, body: bytes, content_type: str,
                  accept: str) -> tryit.Answer:
    """Predict in the endpoint's lane (never on the event loop), counted under the
    endpoint's name in the server's metrics like any invocation."""
    ctx = ctx_of(request)
    try:
        live = await run_in_threadpool(tryit.live_model, ctx, name)
    except NotFoundError as exc:
        return tryit.Answer(404, "text/plain", str(exc), None)
    tag(request, model=name)
    try:
        return await live.lane.run(tryit.send, live, body, content_type, accept)
    except Full as exc:
        return tryit.Answer(503, "text/plain", f"endpoint {name} is busy: {exc}; retry "
                            "shortly", None)


# -- /api/v1 ----------------------------------------------------------------------------
class DeployBody(BaseModel):
    endpoint: str = Field(description="the endpoint's name")
    job: str
    candidate: str
    capture_percent: float = Field(0.0, ge=0, le=100)


class SwapBody(BaseModel):
    job: str
    candidate: str


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "stats"}
    for key in ("created", "since"):
        out[key] = row[key].isoformat() if row[key] else None
    out["stats"] = row["stats"].as_dict()
    return out


@router.get(PREFIX + "/endpoints", tags=["endpoints"])
async def list_endpoints(request: Request) -> dict[str, Any]:
    """Every endpoint with its model, status and request statistics of the last minutes."""
    rows = await run(_rows, request)
    return {"endpoints": [_json_row(r) for r in rows]}


@router.post(PREFIX + "/endpoints", status_code=201, dependencies=CSRF, tags=["endpoints"])
async def deploy_endpoint(request: Request, body: DeployBody) -> dict[str, Any]:
    """Deploy a job's candidate (CreateModel, CreateEndpointConfig, CreateEndpoint)."""
    name = await run(hosting.deploy, ctx_of(request), body.endpoint, body.job, body.candidate,
                     body.capture_percent)
    return await describe_endpoint(request, name)


@router.get(PREFIX + "/endpoints/{name}", tags=["endpoints"])
async def describe_endpoint(request: Request, name: str) -> dict[str, Any]:
    view = await run(hosting.endpoint_view, ctx_of(request), name)
    return _json_row(_row(view, _stats(request).get(name)))


@router.put(PREFIX + "/endpoints/{name}", dependencies=CSRF, tags=["endpoints"])
async def swap_endpoint(request: Request, name: str, body: SwapBody) -> dict[str, Any]:
    """Serve another candidate from the running endpoint (UpdateEndpoint)."""
    await run(hosting.swap, ctx_of(request), name, body.job, body.candidate)
    return await describe_endpoint(request, name)


@router.delete(PREFIX + "/endpoints/{name}", status_code=204, dependencies=CSRF,
               tags=["endpoints"])
async def delete_endpoint(request: Request, name: str) -> Response:
    await run(hosting.undeploy, ctx_of(request), name)
    return Response(status_code=204)


@router.post(PREFIX + "/endpoints/{name}/invocations", dependencies=CSRF, tags=["endpoints"])
async def invoke_endpoint(request: Request, name: str) -> Response:
    """The body (Content-Type text/csv, application/json, ...) predicted by the endpoint,
    answered as /endpoints/{name}/invocations answers it (Accept)."""
    body = await request.body()
    answer = await _invoke(request, name, body, request.headers.get("content-type")
                           or "text/csv", request.headers.get("accept") or "text/csv")
    if answer.status == 404:
        raise ApiFailure(404, answer.body, "ResourceNotFound")
    return Response(answer.body, answer.status, media_type=answer.content_type)


@router.get(PREFIX + "/endpoints/{name}/captures", tags=["endpoints"])
async def endpoint_captures(request: Request, name: str, limit: int = 10) -> JSONResponse:
    """The endpoint's newest captured requests and responses, newest first."""
    view = await run(hosting.endpoint_view, ctx_of(request), name)
    found = await run(tryit.latest_captures, view.capture_dir, max(1, min(limit, 100)))
    return JSONResponse({"captures": [c.__dict__ for c in found]})
