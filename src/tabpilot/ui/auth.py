"""The Studio's login and CSRF rules.

Login (`/studio/login`): where the server checks a token (always off loopback), a person
types it once; the answer is the session cookie the guard admits (serving/guard.py
`studio_session`: derived from the token, HttpOnly, SameSite=Strict, scoped to the
server's root path). The token never travels in a URL and is compared in constant time.
On loopback with no token there is nothing to log in to and the login page says so.

CSRF: a random nonce lives in an HttpOnly, SameSite=Strict cookie; the CSRF token is its
HMAC under a key held in the server's memory. Pages carry the token (meta tag, hidden form
field `csrf_token`, htmx's `hx-headers` on <body>) and every state-changing Studio route
depends on `require_csrf`, which wants it in `X-CSRF-Token` or the form field. A request
that authenticated with the token or a signature in its own headers (a script, not a
browser) needs none: no other site can make a browser send those headers.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from tabpilot.serving.guard import (
    BY_COOKIE,
    STUDIO_SESSION,
    VERIFIED,
    relative,
    route_path,
    studio_secrets,
    studio_session,
)

CSRF_COOKIE = "tabpilot_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
SESSION_SECONDS = 30 * 24 * 3600
STUDIO_LOGIN_PATH = "/studio/login"

router = APIRouter(include_in_schema=False)


def _nonce(request: Request) -> str:
    nonce = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "csrf_nonce", None)
    if not nonce or len(nonce) > 100:
        nonce = secrets.token_urlsafe(24)
        request.state.csrf_nonce = nonce  # render() sets the cookie
    return nonce


def _sign(request: Request, nonce: str) -> str:
    key = request.app.state.studio_key
    return hmac.new(key, f"csrf|{nonce}".encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The CSRF token for this browser (its nonce cookie, made now if it has none)."""
    return _sign(request, _nonce(request))


def cookie_path(request: Request) -> str:
    return (request.scope.get("root_path") or "").rstrip("/") + "/"


def attach_csrf_cookie(request: Request, response: Response) -> None:
    """Send the nonce cookie when this request made a new one."""
    nonce = getattr(request.state, "csrf_nonce", None)
    if nonce and request.cookies.get(CSRF_COOKIE) != nonce:
        response.set_cookie(CSRF_COOKIE, nonce, path=cookie_path(request), httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")


def csrf_ok(request: Request, given: str | None) -> bool:
    nonce = request.cookies.get(CSRF_COOKIE)
    return bool(nonce and given) and hmac.compare_digest(_sign(request, nonce or ""),
                                                         given or "")


async def require_csrf(request: Request) -> None:
    """FastAPI dependency for every state-changing Studio route: 403 without a valid CSRF
    token. Streaming uploads must send the header (the form is not read for them)."""
    if request.scope.get(VERIFIED) and not request.scope.get(BY_COOKIE):
        return  # the token or a signature came in the request's own headers
    given = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if not given and content_type.startswith(FORM_TYPES[0]):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not csrf_ok(request, given):
        raise HTTPException(403, "missing or stale CSRF token: reload the page and try again")


def _next(value: str | None) -> str:
    """Where to go after the login: a Studio path, never another site."""
    path = unquote(value or "")
    if not path.startswith("/studio") or "//" in path or "\\" in path or \
            path.startswith(STUDIO_LOGIN_PATH):
        return "/studio/"
    return path


def _policy(request: Request):
    return request.app.state.access


@router.get("/studio/login")
def login_form(request: Request, next: str | None = None) -> Response:
    from tabpilot.ui.render import render

    policy = _policy(request)
    return render(request, "login.html", nav="login", next=_next(next),
                  needed=not policy.open, error=None)


@router.post("/studio/login")
async def login(request: Request, token: Annotated[str, Form()] = "",
                next: Annotated[str, Form()] = "/studio/",
                csrf_token: Annotated[str, Form()] = "") -> Response:
    from tabpilot.ui.render import render

    policy = _policy(request)
    target = _next(next)
    if policy.open:
        return RedirectResponse(relative(route_path(request.scope), target), 303)
    if not csrf_ok(request, csrf_token):
        return render(request, "login.html", 403, nav="login", next=target, needed=True,
                      error="The form was stale; type the token again.")
    match = [secret for secret in studio_secrets(policy)
             if hmac.compare_digest(token.encode(), secret.encode())]
    if not token or not match:
        return render(request, "login.html", 401, nav="login", next=target, needed=True,
                      error="That is not this server's token.")
    response = RedirectResponse(relative(route_path(request.scope), target), 303)
    response.set_cookie(STUDIO_SESSION, studio_session(match[0]), max_age=SESSION_SECONDS,
                        path=cookie_path(request), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.post("/studio/logout")
async def logout(request: Request) -> Response:
    await require_csrf(request)
    response = RedirectResponse(relative(route_path(request.scope), STUDIO_LOGIN_PATH), 303)
    response.delete_cookie(STUDIO_SESSION, path=cookie_path(request), httponly=True,
                           samesite="strict")
    return response
