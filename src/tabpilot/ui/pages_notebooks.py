"""Notebooks, as in SageMaker Studio: "Open in notebook" and "New notebook" for a job.

    GET  /studio/notebooks/             JupyterLab's state; each job's two buttons
                                        (`?job=NAME` puts that job first)
    POST /studio/notebooks/open         start (or reuse) JupyterLab; link to the job's folder
    POST /studio/notebooks/new          write the job's starter notebook; link to it
    POST /studio/notebooks/stop         stop JupyterLab and its kernels
    GET  /api/v1/notebooks, POST /api/v1/notebooks/open|new

JupyterLab runs beside the server on loopback (ui/jupyter.py) and stops with it (this
router's lifespan). The pages hand out a link rather than redirecting: the Studio's CSP
(`form-action 'self'`) rightly forbids a form post from landing on another origin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from tabpilot import names
from tabpilot.errors import TabpilotError
from tabpilot.settings import STORE_ENV
from tabpilot.ui import jupyter, starter
from tabpilot.ui.auth import require_csrf
from tabpilot.ui.render import ctx_of, render
from tabpilot.ui.rest import PREFIX, run


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    lab = getattr(app.state, "studio_jupyter", None)
    if lab is not None:
        await run_in_threadpool(lab.stop)


router = APIRouter(lifespan=_lifespan)
CSRF = [Depends(require_csrf)]


def lab_of(request: Request) -> jupyter.JupyterLab:
    """The server's JupyterLab (not started until `ensure`)."""
    app = request.app
    lab = getattr(app.state, "studio_jupyter", None)
    if lab is None:
        ctx = ctx_of(request)
        policy = getattr(app.state, "access", None)
        token = getattr(policy, "token", None) or None
        env = {STORE_ENV: ctx.store.url}
        if token:  # the starter's boto3 calls reach the server with it
            env["TABPILOT_TOKEN"] = token
        lab = app.state.studio_jupyter = jupyter.JupyterLab(ctx.workspace, token, env)
    return lab


def server_url(request: Request) -> str:
    """This server as the starter's boto3 clients reach it (root path included)."""
    return str(request.base_url).rstrip("/")


def _jobs(request: Request, first: str | None) -> list[dict[str, Any]]:
    ctx = ctx_of(request)
    lab = getattr(request.app.state, "studio_jupyter", None)
    jobs = sorted(ctx.store.list_jobs(), key=lambda j: j.created or 0, reverse=True)
    if first:
        jobs.sort(key=lambda j: j.name != first)
    out = []
    for job in jobs:
        folder = Path(job.job_dir)
        found = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
        # while JupyterLab runs, each notebook is a link into it
        notebooks = [{"name": p.name, "url": _link(lab, ctx, p)} for p in found]
        out.append({"name": job.name, "status": job.status, "target": job.target,
                    "notebooks": notebooks})
    return out


def _link(lab: jupyter.JupyterLab | None, ctx: Any, path: Path) -> str | None:
    if lab is None or not lab.running:
        return None
    try:
        return lab.url(_relative(ctx, path))
    except jupyter.JupyterError:
        return None


def _relative(ctx: Any, path: Path) -> str:
    """`path` inside the workspace, JupyterLab's root; a job kept elsewhere (a shared
    store's job from another machine) cannot be opened here."""
    try:
        return path.resolve().relative_to(ctx.workspace.resolve()).as_posix()
    except ValueError:
        raise jupyter.JupyterError(f"{path} is outside this server's workspace "
                                   f"({ctx.workspace}), JupyterLab's root") from None


def _job_folder(request: Request, job: str) -> tuple[Any, Path]:
    ctx = ctx_of(request)
    names.check(job, "job")
    row = ctx.store.get_job(job)
    return row, Path(row.job_dir)


def open_job(request: Request, job: str) -> dict[str, str]:
    """Start (or reuse) JupyterLab; the link to the job's folder in it."""
    ctx = ctx_of(request)
    _, folder = _job_folder(request, job)
    lab = lab_of(request).ensure()
    return {"url": lab.url(_relative(ctx, folder)), "path": _relative(ctx, folder)}


def new_notebook(request: Request, job: str) -> dict[str, str]:
    """Write the job's starter notebook, start (or reuse) JupyterLab; the link to it."""
    ctx = ctx_of(request)
    row, _ = _job_folder(request, job)
    lab = lab_of(request)
    if not jupyter.available():
        lab.ensure()  # raises, saying how to install it, before any file is written
    path = starter.write(row, server_url(request), ctx.workspace)
    lab.ensure()
    return {"url": lab.url(_relative(ctx, path)), "path": _relative(ctx, path)}


def _state(request: Request) -> dict[str, Any]:
    lab = getattr(request.app.state, "studio_jupyter", None)
    running = lab is not None and lab.running
    return {"installed": jupyter.available(), "running": running,
            "url": lab.url("") if running else None, "port": lab.port if running else None,
            "token_shared": bool(lab and lab.shared_token),
            "install_hint": jupyter.INSTALL_HINT}


async def _page(request: Request, job: str | None = None, opened: dict | None = None,
                error: str | None = None, status: int = 200) -> Response:
    jobs = await run_in_threadpool(_jobs, request, job)
    return render(request, "notebooks.html", status_code=status, nav="notebooks", jobs=jobs,
                  lab=_state(request), opened=opened, error=error, focus=job)


@router.get("/studio/notebooks/", response_class=HTMLResponse, include_in_schema=False)
async def notebooks_page(request: Request, job: str | None = None) -> Response:
    return await _page(request, job=job if job and names.is_valid(job, "job") else None)


@router.get("/studio/notebooks", include_in_schema=False)
async def notebooks_bare(request: Request) -> Response:
    return await notebooks_page(request, request.query_params.get("job"))


async def _act(request: Request, action, job: str, what: str) -> Response:
    try:
        opened = await run_in_threadpool(action, request, job)
    except TabpilotError as exc:
        return await _page(request, job=job if names.is_valid(job, "job") else None,
                           error=str(exc), status=400)
    return await _page(request, job=job, opened={**opened, "what": what, "job": job})


@router.post("/studio/notebooks/open", dependencies=CSRF, include_in_schema=False)
async def open_form(request: Request, job: Annotated[str, Form()] = "") -> Response:
    return await _act(request, open_job, job, "folder")


@router.post("/studio/notebooks/new", dependencies=CSRF, include_in_schema=False)
async def new_form(request: Request, job: Annotated[str, Form()] = "") -> Response:
    return await _act(request, new_notebook, job, "notebook")


@router.post("/studio/notebooks/stop", dependencies=CSRF, include_in_schema=False)
async def stop_form(request: Request) -> Response:
    lab = getattr(request.app.state, "studio_jupyter", None)
    if lab is not None:
        await run_in_threadpool(lab.stop)
    return await _page(request)


# -- /api/v1 ----------------------------------------------------------------------------
class JobBody(BaseModel):
    job: str


@router.get(PREFIX + "/notebooks", tags=["notebooks"])
async def notebooks_state(request: Request) -> dict[str, Any]:
    """Whether JupyterLab is installed and running, and where."""
    return _state(request)


@router.post(PREFIX + "/notebooks/open", dependencies=CSRF, tags=["notebooks"])
async def open_api(request: Request, body: JobBody) -> dict[str, str]:
    """Start (or reuse) JupyterLab; {url, path} of the job's folder in it."""
    return await run(open_job, request, body.job)


@router.post(PREFIX + "/notebooks/new", status_code=201, dependencies=CSRF,
             tags=["notebooks"])
async def new_api(request: Request, body: JobBody) -> dict[str, str]:
    """Write the job's starter notebook into its folder; {url, path} of it in JupyterLab."""
    return await run(new_notebook, request, body.job)
