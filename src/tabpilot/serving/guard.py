"""Who may call the server: one check in front of every route (the SageMaker control plane,
the endpoints' invocations, the listings); only GET /ping stays open, for health checks.

    token or credentials configured   every request carries the token
                                      (`Authorization: Bearer T` or `X-Tabpilot-Token: T`)
                                      or an AWS SigV4 signature made with the credentials
    neither (loopback only)           requests are accepted unauthenticated, signed or not
    bound to loopback                 the Host header must name a loopback host, which
                                      defeats DNS rebinding
    always                            a browser's Origin must be the server's own (or one
                                      allowed), and `Sec-Fetch-Site: cross-site` is refused,
                                      so a web page the user visits cannot drive the API
    /review/ (the review page)        Host and Origin checks as above, but no server token:
                                      those routes admit only a reviewer's signed session
                                      (review/web.py). A reviewer's token is never compared
                                      here, so it opens nothing else.
    the Studio (/studio/, /api/v1/)   Host and Origin checks as above; besides the token or
                                      a signature, a Studio session cookie admits (given by
                                      /studio/login for the server's token: HttpOnly,
                                      SameSite=Strict, a value derived from the token, never
                                      the token). Without either, a page redirects to the
                                      login and the API answers 401. Open without a session:
                                      GET / (it redirects to studio/), the login form and
                                      the vendored static files. The Studio's routes check
                                      CSRF themselves (ui/auth.py).

It is plain ASGI, so it runs before any route reads the body; a signed request's body is
read here (bounded by the body limit in front of it) and replayed to the route.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import posixpath
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.requests import cookie_parser
from starlette.responses import RedirectResponse

from tabpilot.serving.limits import control_plane_error, runtime_error
from tabpilot.serving.sigv4 import SignatureError, is_signed, verify

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
REVIEW_PAGE = "/review"  # authenticates its own users (reviewers), see review/web.py
VERIFIED = "tabpilot.verified"  # scope key: the request's signature or token was checked
STUDIO_SESSION = "tabpilot_studio"  # the Studio's session cookie (ui/auth.py sets it)
BY_COOKIE = "tabpilot.studio_cookie"  # scope key: admitted by the Studio's session cookie
STUDIO_LOGIN = "/studio/login"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass
class AccessPolicy:
    token: str | None = None
    credentials: dict[str, str] = field(default_factory=dict)  # access key id -> secret
    loopback: bool = True  # the server is bound to a loopback address
    hosts: tuple[str, ...] = ()  # Host names accepted beside loopback's (a proxy's name)
    origins: tuple[str, ...] = ()  # browser origins accepted beside the server's own

    @property
    def open(self) -> bool:
        """Whether unauthenticated requests are accepted (only ever on loopback)."""
        return not self.token and not self.credentials


class Denied(Exception):
    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class Guard:
    """ASGI middleware enforcing an AccessPolicy on every HTTP request."""

    def __init__(self, app: Callable[..., Awaitable[None]], policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (route_path(scope) == "/ping"
                                       and scope["method"] in ("GET", "HEAD")):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        area = studio_area(scope)
        try:
            self._check_origin(headers)
        except Denied as exc:
            await deny(scope, receive, send, exc.code, exc.message, exc.status)
            return
        try:
            if area in ("page", "api") and self._studio_session(headers):
                scope[VERIFIED] = scope[BY_COOKIE] = True
            elif area != "open" and not is_review_page(scope):
                receive = await self._authenticate(scope, headers, receive)
        except Denied as exc:
            if area == "page" and scope["method"] in ("GET", "HEAD"):
                await to_login(scope, receive, send)
            else:
                await deny(scope, receive, send, exc.code, exc.message, exc.status)
            return
        await self.app(scope, receive, send)

    def _studio_session(self, headers: dict[str, str]) -> bool:
        """Whether the request carries a valid Studio session cookie."""
        given = cookie_parser(headers.get("cookie", "")).get(STUDIO_SESSION)
        if not given or self.policy.open:
            return False
        return any(hmac.compare_digest(given.encode(), studio_session(secret).encode())
                   for secret in studio_secrets(self.policy))

    def _check_origin(self, headers: dict[str, str]) -> None:
        host = headers.get("host", "")
        if self.policy.loopback and _hostname(host) not in LOOPBACK_HOSTS | set(self.policy.hosts):
            raise Denied("AccessDeniedException", f"Host {host[:100]!r} is not this server's: "
                         "it answers on loopback names only (add one with --allow-host)")
        origin = headers.get("origin")
        if origin is not None and origin not in self.policy.origins \
                and urlsplit(origin).netloc.lower() != host.lower():
            raise Denied("AccessDeniedException", f"requests from the web page at "
                         f"{origin[:100]!r} are refused (add it with --allow-origin)")
        if headers.get("sec-fetch-site") == "cross-site" and origin not in self.policy.origins:
            raise Denied("AccessDeniedException", "cross-site requests from a browser are refused")

    async def _authenticate(self, scope: Scope, headers: dict[str, str],
                            receive: Receive) -> Receive:
        policy = self.policy
        authorization = headers.get("authorization", "")
        if is_signed(authorization):
            if policy.credentials:
                body, receive = await _read_body(receive)
                try:
                    verify(scope["method"], _url(scope, headers), headers, body,
                           policy.credentials)
                except SignatureError as exc:
                    raise Denied(exc.code, exc.message, exc.status) from None
                scope[VERIFIED] = True
            elif not policy.open:
                raise Denied("UnrecognizedClientException", "this server checks an API token, "
                             "not AWS signatures; start it with credentials "
                             "(--aws-access-key-id, --aws-secret-access-key)")
            return receive
        given = headers.get("x-tabpilot-token") or authorization.removeprefix("Bearer ").strip()
        if policy.token and given and hmac.compare_digest(given.encode(), policy.token.encode()):
            scope[VERIFIED] = True
            return receive
        if policy.open:
            return receive
        if not policy.token:
            raise Denied("MissingAuthenticationTokenException", "Missing Authentication Token; "
                         "sign the request with the server's AWS credentials")
        raise Denied("UnauthorizedException", "missing or wrong API token; send "
                     "'Authorization: Bearer TOKEN'", 401)


def studio_secrets(policy: AccessPolicy) -> list[str]:
    """What the Studio's login accepts: the server's token, else an AWS secret key."""
    return [policy.token] if policy.token else list(policy.credentials.values())


def studio_session(secret: str) -> str:
    """The session cookie's value for a login with `secret`: derived from it (a stolen
    cookie is not the token; a restart keeps people signed in; a new token signs all out)."""
    return hmac.new(secret.encode(), b"tabpilot studio session", hashlib.sha256).hexdigest()


def route_path(scope: Scope) -> str:
    """The path the routes see: uvicorn puts --root-path in front, Starlette strips it."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] or "/" if root and path.startswith(root) else path


def studio_area(scope: Scope) -> str | None:
    """Which part of the Studio a request is for: "open" (GET / redirecting to studio/,
    the login form, the static files), "page" (/studio/...), "api" (/api/v1/...), or
    None (not the Studio, or a path with dot segments, which gets the plain rules)."""
    path = route_path(scope)
    if any(part in (".", "..") for part in path.split("/")):
        return None
    if path == "/":
        return "open" if scope["method"] in ("GET", "HEAD") else None
    if path == STUDIO_LOGIN or path.startswith("/studio/static/"):
        return "open"
    if path == "/studio" or path.startswith("/studio/"):
        return "page"
    if path == "/api/v1" or path.startswith("/api/v1/"):
        return "api"
    return None


@functools.lru_cache(maxsize=4096)  # pure; a page links the same paths on every render
def relative(current: str, target: str) -> str:
    """`target` (a path from the server's root) as a URL relative to the page at `current`,
    so links and redirects work behind a reverse proxy's prefix."""
    base = current if current.endswith("/") else posixpath.dirname(current) + "/"
    path, mark, query = target.partition("?")
    rel = posixpath.relpath(path, base)
    if path.endswith("/") and rel != ".":
        rel += "/"
    elif not path.endswith("/") and rel.rsplit("/", 1)[-1] in (".", ".."):
        # "." or ".." would name the folder (with a slash): name the page itself
        rel = posixpath.normpath(posixpath.join(rel, "..", posixpath.basename(path)))
    rel = "./" if rel == "." else rel
    if ":" in rel.split("/", 1)[0]:  # "a:b" would read as a scheme
        rel = "./" + rel
    return rel + mark + query


async def to_login(scope: Scope, receive: Receive, send: Send) -> None:
    """A page asked for without a session: the login form, which comes back here."""
    path = route_path(scope)
    query = scope.get("query_string", b"").decode("latin-1")
    back = quote(path + (f"?{query}" if query else ""), safe="")
    response = RedirectResponse(relative(path, STUDIO_LOGIN) + f"?next={back}", 303,
                                headers={"Cache-Control": "no-store"})
    await response(scope, receive, send)


def is_review_page(scope: Scope) -> bool:
    """A path of the review page: `/review` or under `/review/`, with no dot segments
    (routes match the path as sent, so `/review/../x` could never reach another route,
    but it is refused here all the same)."""
    path = route_path(scope)
    if path != REVIEW_PAGE and not path.startswith(REVIEW_PAGE + "/"):
        return False
    return not any(part in (".", "..") for part in path.split("/"))


async def deny(scope: Scope, receive: Receive, send: Send, code: str, message: str,
               status: int) -> None:
    """Answer in the SageMaker API's error shape (control plane) or sagemaker-runtime's."""
    if route_path(scope) == "/":
        response = control_plane_error(code, message, status)
    else:
        response = runtime_error(message, status, code)
    await response(scope, receive, send)


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body, and a `receive` that hands it to the route again."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise Denied("RequestAbortedException", "the client went away", 400)
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> MutableMapping[str, Any]:
        nonlocal sent
        if sent:
            return await receive()  # the disconnect, when it comes
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, replay


def _url(scope: Scope, headers: dict[str, str]) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    path = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{headers.get('host', '')}{path}" + \
        (f"?{query}" if query else "")


def _hostname(host: str) -> str:
    """The name in a Host header: '[::1]:8080' -> '::1', 'localhost:80' -> 'localhost'."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
