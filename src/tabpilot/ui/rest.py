"""The Studio's native REST API, `/api/v1`: JSON for the pages, nothing else.

Each page module adds its `/api/v1/...` routes to its own router; this module serves the
OpenAPI document of all of them at `/api/v1/openapi.json` (the pages' HTML routes stay out
of it) and turns tabpilot's errors into one status and one line:

    NotFoundError       404 {"error": "...", "message": "..."}   (sagemaker-runtime's shape,
    other TabpilotError 400                                       like the rest of the server)

`run(fn, *args)` runs a blocking store call off the event loop and maps those errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from tabpilot.errors import NotFoundError, TabpilotError
from tabpilot.serving.limits import runtime_error

PREFIX = "/api/v1"
T = TypeVar("T")

router = APIRouter()


class ApiFailure(Exception):
    """A refusal with its HTTP status, answered in the server's error shape."""

    def __init__(self, status: int, message: str, kind: str = "ValidationError") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind

    def response(self) -> JSONResponse:
        return runtime_error(self.message, self.status, self.kind)


async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args)` in the thread pool; tabpilot's errors become ApiFailure (404 / 400)."""
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except NotFoundError as exc:
        raise ApiFailure(404, str(exc), "ResourceNotFound") from None
    except TabpilotError as exc:
        raise ApiFailure(400, str(exc)) from None


def install_errors(app: Any) -> None:
    @app.exception_handler(ApiFailure)
    async def failure(request: Request, exc: ApiFailure) -> JSONResponse:
        return exc.response()


@router.get(PREFIX + "/openapi.json", include_in_schema=False)
def openapi(request: Request) -> JSONResponse:
    """The OpenAPI document of every /api/v1 route the installed page modules added."""
    schema = get_openapi(title="tabpilot Studio API", version="1",
                         description="The REST API the Studio's pages use. State-changing "
                                     "calls from a browser need the X-CSRF-Token header; "
                                     "scripts authenticate with 'Authorization: Bearer TOKEN'.",
                         routes=request.app.routes)
    # the routes of included routers are flattened by get_openapi; keep this API's only
    schema["paths"] = {path: item for path, item in schema.get("paths", {}).items()
                       if path.startswith(PREFIX + "/")}
    root = (request.scope.get("root_path") or "").rstrip("/")
    if root:
        schema["servers"] = [{"url": root}]
    return JSONResponse(schema)
