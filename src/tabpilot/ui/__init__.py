"""tabpilot Studio: server-rendered pages over a native REST API, on `tabpilot serve`.

    GET /                 redirects to studio/ (POST / stays the SageMaker API)
    /studio/...           pages (Jinja2 + vendored htmx / uPlot, no CDN)
    /studio/static/...    vendored assets, studio.css, studio.js
    /api/v1/...           JSON the pages use; OpenAPI at /api/v1/openapi.json

The Studio holds no business logic: its routes call the same functions the CLI and the
SageMaker facade call (jobs/, api/, serving/). Each page module `pages_<name>.py` in PAGES
exposes `router`; `install` includes every one that exists, so a page lands by adding its
module. Who may call is the server's guard (serving/guard.py: token or Studio session,
Host, Origin); CSRF and the response headers are this package's (auth.py, `_Headers`).
"""

from __future__ import annotations

import importlib
import importlib.util
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from tabpilot.serving.guard import route_path, studio_area

if TYPE_CHECKING:
    from tabpilot.api.context import ApiContext

PAGES = ("home", "job", "wizard", "candidate", "explore", "compare", "endpoints",
         "transforms", "notebooks", "experiments")
STATIC = Path(__file__).parent / "static"
# 'self' only: no inline script or style, no data: images; nothing may frame the pages
CSP = ("default-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()),
           (b"x-content-type-options", b"nosniff"),
           (b"x-frame-options", b"DENY"),
           # not no-referrer: with it Chromium sends `Origin: null` on a form's POST,
           # which the guard's Origin check must refuse
           (b"referrer-policy", b"same-origin")]


def install(app: FastAPI, ctx: ApiContext, *, root_path: str = "") -> None:
    """Add the Studio to a `server_app` that `api.app.install` already equipped."""
    from tabpilot.ui import auth, rest

    app.state.studio_ctx = ctx
    app.state.studio_key = secrets.token_bytes(32)  # CSRF tokens; a restart renews them
    app.state.studio_root = root_path.rstrip("/")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("studio/", 303)

    app.mount("/studio/static", StaticFiles(directory=STATIC), name="studio-static")
    rest.install_errors(app)
    app.include_router(auth.router)
    app.include_router(rest.router)
    for name in PAGES:
        module = f"tabpilot.ui.pages_{name}"
        if importlib.util.find_spec(module) is not None:
            app.include_router(importlib.import_module(module).router)
    app.add_middleware(_Headers)


class _Headers:
    """The Studio's security headers on every Studio response, the guard's refusals and
    redirects included (this middleware sits outside the guard)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not _is_studio(scope):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *(h for h in HEADERS if h[0] not in names)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_studio(scope: dict) -> bool:
    path = route_path(scope)
    return studio_area(scope) is not None or path.startswith(("/studio", "/api/v1"))
