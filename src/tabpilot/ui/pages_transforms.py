"""Batch transform: score a file with a job's candidate, watch it, find its output.

    GET  /studio/transforms                the form and every transform, newest first
                                           (`?fragment=rows`: the rows alone, polled)
    POST /studio/transforms                start one (a path under the allowed data roots,
                                           or an uploaded file streamed to uploads/)
    GET  /studio/transforms/{name}/output/{file}   a finished output file, downloaded
    GET|POST /api/v1/transforms, GET /api/v1/transforms/{name}

A transform is CreateModel + CreateTransformJob through the SageMaker facade
(ui/hosting.py), run by the same worker process a boto3 CreateTransformJob starts; its
progress is read from its output folder (files scored, rows and bytes written so far).
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from tabpilot.errors import TabpilotError
from tabpilot.ui import hosting
from tabpilot.ui.auth import CSRF_FIELD, csrf_ok, require_csrf
from tabpilot.ui.render import ctx_of, render, url_for_page
from tabpilot.ui.render import fragment as render_fragment
from tabpilot.ui.rest import PREFIX, ApiFailure, run
from tabpilot.ui.upload import save

router = APIRouter()
ACCEPTS = ("text/csv", "application/jsonlines")
CHUNK = 1 << 20


async def _csrf(request: Request) -> None:
    """`require_csrf`, also reading the token from a multipart form's field: the upload
    form posts multipart, and a browser without scripts cannot add the header."""
    if request.headers.get("content-type", "").startswith("multipart/form-data") and \
            not request.headers.get("x-csrf-token"):
        form = await request.form()
        given = form.get(CSRF_FIELD)
        if isinstance(given, str) and csrf_ok(request, given):
            return
    await require_csrf(request)


def _moment(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC)


def _shown(ctx: Any, location: str) -> str:
    """A location as the table shows it: inside the workspace, relative to it (short)."""
    if "://" in location:
        return location
    try:
        return Path(location).resolve().relative_to(ctx.workspace.resolve()).as_posix()
    except (ValueError, OSError):
        return location


def _rows(request: Request) -> list[dict[str, Any]]:
    out = []
    ctx = ctx_of(request)
    for t in hosting.transform_views(ctx):
        row = t.as_dict()
        row.update(source_shown=_shown(ctx, t.source), output_shown=_shown(ctx, t.output))
        row.update(created=_moment(t.created), started=_moment(t.started),
                   ended=_moment(t.ended),
                   files=[p.name for p in hosting.output_files(ctx_of(request), t.output)]
                   if t.status == "Completed" else [])
        out.append(row)
    return out


@router.get("/studio/transforms", response_class=HTMLResponse, include_in_schema=False)
async def transforms_page(request: Request, fragment: str | None = None,
                          started: str | None = None) -> Response:
    """The page; `?fragment=rows`: the table's rows alone, which the page polls while a
    transform runs."""
    if fragment == "rows":
        rows = await run_in_threadpool(_rows, request)
        running = any(r["status"] == "InProgress" for r in rows)
        # 286 tells htmx to stop polling: nothing is left to watch
        return HTMLResponse(render_fragment(request, "transforms_rows.html", rows=rows),
                            200 if running else 286, headers={"Cache-Control": "no-store"})
    return await _page(request, started=started)


async def _page(request: Request, error: str | None = None, status: int = 200,
                form: dict[str, Any] | None = None, started: str | None = None) -> Response:
    ctx = ctx_of(request)
    rows = await run_in_threadpool(_rows, request)
    choices = await run_in_threadpool(hosting.deployable, ctx)
    return render(request, "transforms.html", status_code=status, nav="transforms", rows=rows,
                  choices=choices, error=error, form=form or {}, accepts=ACCEPTS,
                  started=started, running=any(r["status"] == "InProgress" for r in rows),
                  roots=_roots(ctx))


def _roots(ctx: Any) -> list[str]:
    return [str(ctx.workspace), *ctx.locations.allow]


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK):
        yield chunk


@router.post("/studio/transforms", dependencies=[Depends(_csrf)], include_in_schema=False)
async def start_form(request: Request) -> Response:
    form = await request.form()
    model = str(form.get("model") or "")
    source = str(form.get("source") or "").strip()
    output = str(form.get("output") or "").strip() or None
    accept = str(form.get("accept") or ACCEPTS[0])
    upload = form.get("file")
    shown = {"model": model, "source": source, "accept": accept, "output": output or ""}
    ctx = ctx_of(request)
    try:
        if accept not in ACCEPTS:
            raise hosting.StudioError(f"output format {accept!r}: use one of {', '.join(ACCEPTS)}")
        job, _, candidate = model.partition("/")
        if not job or not candidate:
            raise hosting.StudioError("choose the model to score with: a job and one of its "
                                      "candidates")
        if isinstance(upload, UploadFile) and upload.filename:
            if source:
                raise hosting.StudioError("give a path or upload a file, not both")
            source = str(await save(_chunks(upload), ctx.workspace, upload.filename))
        name = await run_in_threadpool(hosting.start_transform, ctx, job, candidate, source,
                                       output, accept)
    except TabpilotError as exc:
        if request.headers.get("hx-request"):  # htmx swaps 2xx only: the line, in place
            return HTMLResponse(f'<p class="notice error" role="alert">{html.escape(str(exc))}'
                                "</p>")
        return await _page(request, error=str(exc), status=400, form=shown)
    target = url_for_page(request, "/studio/transforms") + f"?started={name}#t-{name}"
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, 303)


@router.get("/studio/transforms/{name}/output/{file}", include_in_schema=False)
async def download(request: Request, name: str, file: str) -> Response:
    """One of the transform's finished `.out` files (only those: the name is looked up in
    the folder's listing, never joined to a path)."""
    view = await run(hosting.transform_view, ctx_of(request), name)
    files = await run(hosting.output_files, ctx_of(request), view.output)
    found = next((p for p in files if p.name == file), None)
    if found is None:
        raise ApiFailure(404, f"transform {name!r} has no finished output file {file!r}",
                         "ResourceNotFound")
    return FileResponse(found, media_type="text/plain; charset=utf-8", filename=found.name)


# -- /api/v1 ----------------------------------------------------------------------------
class TransformBody(BaseModel):
    job: str
    candidate: str
    source: str
    output: str | None = None
    accept: str = "text/csv"
    name: str | None = None


def _json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()}


@router.get(PREFIX + "/transforms", tags=["transforms"])
async def list_transforms(request: Request) -> dict[str, Any]:
    """Every batch transform, newest first, with its progress."""
    rows = await run(_rows, request)
    return {"transforms": [_json(r) for r in rows]}


@router.get(PREFIX + "/transforms/{name}", tags=["transforms"])
async def describe_transform(request: Request, name: str) -> dict[str, Any]:
    t = await run(hosting.transform_view, ctx_of(request), name)
    row = t.as_dict()
    row.update(created=_moment(t.created), started=_moment(t.started), ended=_moment(t.ended))
    return _json(row)


@router.post(PREFIX + "/transforms", status_code=201, dependencies=[Depends(require_csrf)],
             tags=["transforms"])
async def start_transform(request: Request, body: TransformBody) -> dict[str, Any]:
    """Score `source` (a file or folder under the allowed data roots) with a job's
    candidate: CreateModel + CreateTransformJob, run in a worker process."""
    name = await run(hosting.start_transform, ctx_of(request), body.job, body.candidate,
                     body.source, body.output, body.accept, body.name)
    return await describe_transform(request, name)
