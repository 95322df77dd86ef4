"""Pages from Jinja2 templates (ui/templates/), autoescaped, with what every page needs.

Every template sees `url(path)` (a path from the server's root, e.g. "/studio/jobs/x", made
relative to the current page so a reverse proxy's prefix works), `csrf_token`, `ctx` (the
ApiContext), `request` and `nav` (the current section). `json_block(id, data)` in a
template writes chart data as `<script type="application/json">`, which the CSP allows
because it is never executed; studio.js reads it.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from tabpilot.serving.guard import relative, route_path

if TYPE_CHECKING:
    from tabpilot.api.context import ApiContext

TEMPLATES = Path(__file__).parent / "templates"
_env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                          autoescape=jinja2.select_autoescape(default=True,
                                                              default_for_string=True),
                          undefined=jinja2.StrictUndefined, trim_blocks=True,
                          lstrip_blocks=True)


def ctx_of(request: Request) -> ApiContext:
    """The server's ApiContext (store, workspace, locations, endpoint registry)."""
    return request.app.state.studio_ctx


def url_for_page(request: Request, path: str) -> str:
    """`path` (from the server's root) relative to the page `request` is for."""
    return relative(route_path(request.scope), path)


def render(request: Request, template: str, status_code: int = 200,
           headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """Render `template` with the common context; sets the CSRF cookie when it is new.
    (`status_code`, not `status`: a page may well want a variable called status.)"""
    from tabpilot.ui.auth import attach_csrf_cookie, csrf_token

    token = csrf_token(request)
    html = _env.get_template(template).render(
        request=request, ctx=ctx_of(request), csrf_token=token,
        url=lambda path: url_for_page(request, path), **context)
    response = HTMLResponse(html, status_code, headers={"Cache-Control": "no-store",
                                                    **(headers or {})})
    attach_csrf_cookie(request, response)
    return response


def fragment(request: Request, template: str, **context: Any) -> str:
    """A template rendered alone (a table's rows for a live update), same globals."""
    from tabpilot.ui.auth import csrf_token

    return _env.get_template(template).render(
        request=request, ctx=ctx_of(request), csrf_token=csrf_token(request),
        url=lambda path: url_for_page(request, path), **context)


def json_block(element_id: str, data: Any) -> Markup:
    """Data for a script (chart points) as a non-executed JSON block the CSP allows;
    `</` is escaped so a value can never close the element."""
    try:
        text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    except ValueError:  # NaN or an infinity somewhere: null instead
        text = json.dumps(_plain(data), separators=(",", ":"))
    text = text.replace("</", "<\\/")
    return Markup('<script type="application/json" id="{}">{}</script>').format(
        element_id, Markup(text))


def _plain(value: Any) -> Any:
    """NaN and infinities as null: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def number(value: Any, digits: int = 4) -> str:
    """A score or a latency as people read it: 4 significant digits, '—' when missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, (int, float)):
        return f"{value:.{digits}g}"
    return str(value)


def duration(seconds: Any) -> str:
    """12 s, 3 min 05 s, 1 h 02 min."""
    if seconds is None:
        return "—"
    s = int(round(float(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def when(value: Any) -> str:
    """A timestamp (datetime or ISO text) as UTC minutes."""
    if value is None or value == "":
        return "—"
    if isinstance(value, (int, float)):  # the store's timestamps
        value = datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


_env.globals.update(json_block=json_block)
_env.filters.update(number=number, duration=duration, when=when)
