"""The new-job wizard, `/studio/new`: a table (uploaded, or picked under the server's
allowed data roots), its preview with each column's kind, the target and the problem type
and metric it suggests (with the reason), the time limit and the advanced options, the
equivalent CLI / Python / boto3 code, and Start.

The page works as plain forms (GET refreshes the preview, the suggestion and the code;
POST starts), and `wizard.js` makes it live: the upload streams with its progress, the
suggestion and the code follow each change. Start sends the facade's own
CreateAutoMLJobV2 (`api.app.call`: botocore validation, `api/jobs.py`, a worker process)
and goes to the job's page. Bad input is one line on the page, never a traceback.

    GET  /studio/new                      the page (its state in the query string)
    POST /studio/new                      start the job (CSRF)
    PUT  /api/v1/uploads?name=FILE        stream a table into the workspace (CSRF)
    GET  /api/v1/tables?data=LOCATION     preview: rows, size, columns and kinds, head
    GET  /api/v1/tables/suggestion?data=&target=   problem type, metric, reasons
    GET  /api/v1/code/job?<the form>      {"cli", "python", "boto3"}
    GET  /api/v1/data-roots               the tables under the allowed roots
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response

from tabpilot.api.shapes import ApiError
from tabpilot.errors import TabpilotError
from tabpilot.ui import code, tables, upload
from tabpilot.ui.auth import require_csrf
from tabpilot.ui.jobform import (
    EXCLUDE,
    FAMILIES,
    KINDS,
    JobForm,
    default_output,
    feature_spec_path,
    sagemaker_request,
    write_feature_spec,
)
from tabpilot.ui.render import ctx_of, render, url_for_page
from tabpilot.ui.rest import PREFIX, ApiFailure, run

router = APIRouter()
CACHE = tables.TableCache()
FAMILY_LABELS = {"xgboost": "XGBoost", "lightgbm": "LightGBM", "catboost": "CatBoost",
                 "random_forest": "Random forest", "extra_trees": "Extra trees",
                 "linear": "Linear model", "mlp": "Neural network (MLP)"}


def upload_cap(request: Request) -> int:
    """The largest upload: the server's body cap (`tabpilot serve --max-body-mb`), which
    would cut a longer body anyway."""
    caps = getattr(request.app, "body_caps", None)
    return int(caps[1]) if caps else int(upload.MAX_UPLOAD_MB * upload.MiB)


def new_job_name() -> str:
    """The CLI's own job-name scheme; `jobs.runner` (the whole job machinery) is imported
    on first use, not when `tabpilot serve` starts."""
    from tabpilot.jobs.runner import new_job_name as named

    return named()


def _form(request: Request, pairs: list[tuple[str, str]]) -> JobForm:
    """The form; a relative path is taken inside the workspace (the server's working
    folder is nothing a browser user knows), and a missing name is generated."""
    form = JobForm.parse(pairs)
    if form.data and "://" not in form.data and not Path(form.data).is_absolute():
        form.data = str(ctx_of(request).workspace.resolve() / form.data)
    if not form.name:
        form.name = new_job_name()
    return form


def _state(request: Request, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Everything the page shows for a form state; a bad field is `error`, one line."""
    ctx = ctx_of(request)
    state: dict[str, Any] = {"error": None, "table": None, "suggestion": None, "code": None,
                             "form": JobForm(name=new_job_name())}
    try:
        form = state["form"] = _form(request, pairs)
        if form.data:
            table = state["table"] = CACHE.get(ctx.locations, form.data)
            if form.target:
                state["suggestion"] = tables.suggest(table, form.target)
        state["code"] = _code(request, form)
    except TabpilotError as exc:
        state["error"] = str(exc)
    return state


def _code(request: Request, form: JobForm) -> dict[str, str]:
    ctx = ctx_of(request)
    spec = feature_spec_path(ctx.workspace, form.name) if form.kinds else None
    request_v2 = sagemaker_request(form, ctx.workspace, spec)
    return code.job_code(form, request_v2, ctx.workspace, code.server_url(request))


def _page(request: Request, state: dict[str, Any], status: int = 200) -> Response:
    ctx = ctx_of(request)
    return render(request, "wizard.html", status, nav="wizard", **state,
                  roots=tables.listing(ctx.locations), families=FAMILIES,
                  family_labels=FAMILY_LABELS, kinds=KINDS, exclude=EXCLUDE,
                  problem_metrics=tables.problem_metrics(),
                  output_default=default_output(ctx.workspace),
                  max_upload_mb=round(upload_cap(request) / upload.MiB, 2),
                  max_upload_bytes=upload_cap(request),
                  human_bytes=tables.human_bytes)


@router.get("/studio/new", include_in_schema=False)
def wizard(request: Request) -> Response:
    state = _state(request, list(request.query_params.multi_items()))
    return _page(request, state, 200 if state["error"] is None else 400)


@router.post("/studio/new", include_in_schema=False, dependencies=[Depends(require_csrf)])
async def start(request: Request) -> Response:
    pairs = [(k, v) for k, v in (await request.form()).multi_items()
             if isinstance(v, str) and k != "csrf_token"]
    try:
        name = await run_in_threadpool(_start, request, pairs)
    except (TabpilotError, ApiError) as exc:
        state = await run_in_threadpool(_state, request, pairs)
        state["error"] = exc.message if isinstance(exc, ApiError) else str(exc)
        return _page(request, state, 400)
    return RedirectResponse(url_for_page(request, f"/studio/jobs/{name}"), 303)


def _start(request: Request, pairs: list[tuple[str, str]]) -> str:
    """CreateAutoMLJobV2 through the facade, as boto3 would send it; the job's name."""
    from tabpilot.api.app import call

    ctx = ctx_of(request)
    form = _form(request, pairs)
    if not form.data:
        raise upload.UploadError("choose a table first: upload one or pick one under an "
                                 "allowed root")
    table = CACHE.get(ctx.locations, form.data)
    form.check_columns(table.columns)
    if ctx.store.job_exists(form.name):  # before the feature types file is written
        raise ApiError("ResourceInUse", f"Job with name {form.name} already exists.")
    spec = write_feature_spec(form, table.columns, ctx.workspace)
    call(ctx, "CreateAutoMLJobV2", sagemaker_request(form, ctx.workspace, spec))
    return form.name


# -- the REST routes the page's script uses --------------------------------------------
@router.put(PREFIX + "/uploads", dependencies=[Depends(require_csrf)], tags=["wizard"])
async def put_upload(request: Request, name: str) -> JSONResponse:
    """Stream the request body into the workspace's uploads/ folder (a table file)."""
    ctx = ctx_of(request)
    declared = request.headers.get("content-length")
    try:
        path = await upload.save(request.stream(), ctx.workspace, name, upload_cap(request),
                                 declared=int(declared) if declared and declared.isdigit()
                                 else None)
    except TabpilotError as exc:
        raise ApiFailure(413 if "upload limit" in str(exc) else 400, str(exc)) from None
    size = path.stat().st_size
    return JSONResponse({"path": str(path), "bytes": size, "size": tables.human_bytes(size),
                         "name": name}, status_code=201)


@router.get(PREFIX + "/tables", tags=["wizard"])
async def get_table(request: Request, data: str) -> dict[str, Any]:
    """The table at `data` (inside the allowed roots): rows, size, columns, first rows."""
    table = await run(CACHE.get, ctx_of(request).locations, data)
    return table.summary()


@router.get(PREFIX + "/tables/suggestion", tags=["wizard"])
async def get_suggestion(request: Request, data: str, target: str) -> dict[str, Any]:
    """The problem type and metric a job on `target` would resolve, with the reasons."""
    table = await run(CACHE.get, ctx_of(request).locations, data)
    return await run(tables.suggest, table, target)


@router.get(PREFIX + "/code/job", tags=["wizard"])
async def get_job_code(request: Request) -> dict[str, str]:
    """The wizard's form (as query parameters) as a CLI command, a Python call and boto3."""
    pairs = list(request.query_params.multi_items())
    form = await run(_form, request, pairs)
    return await run(_code, request, form)


@router.get(PREFIX + "/data-roots", tags=["wizard"])
async def get_roots(request: Request) -> dict[str, Any]:
    """The allowed local data roots and the table files under each."""
    return {"roots": await run(tables.listing, ctx_of(request).locations)}
