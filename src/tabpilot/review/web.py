"""The review page under /review/: sign in with a reviewer token, then one task at a time.

    GET  /review/          the reviewer's task (a lease is taken on first view), or sign-in
    GET  /review/login     the sign-in form
    POST /review/login     reviewer + token -> a session cookie
    POST /review/answer    loop + label
    POST /review/logout

The server's guard lets /review/ through without the server's token (its Host and Origin
checks still apply); these routes admit a request only with a valid session, which the
sign-in form gives for a reviewer's own token. The session cookie is HttpOnly,
SameSite=Strict, scoped to /review and signed with a key that lives only in the server's
memory (a restart signs everyone out); it names the reviewer and its end. Every form
carries a CSRF token derived from the session (the sign-in form's from a pre-session
cookie), checked in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import parse_qs, quote

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tabpilot.errors import TabpilotError
from tabpilot.review import reviewers
from tabpilot.review.desk import COMPLETED, LeaseError, ReviewDesk
from tabpilot.review.flows import LOOP
from tabpilot.review.templates import render

SESSION, PRESESSION = "tabpilot_review", "tabpilot_review_login"
SESSION_SECONDS = 12 * 3600
FORM_BYTES = 64 * 1024
ERRORS = {"lease": "Your lease on that task ended (or the loop closed); it went back to "
                    "the queue. Here is your next task.",
          "label": "Choose one of the labels."}
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer",
           "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                      "form-action 'self'; frame-ancestors 'self'"}


class Sessions:
    """Signed session values and the CSRF tokens bound to them."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)

    def _sign(self, text: str) -> str:
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()

    def issue(self, reviewer: str, now: float) -> str:
        body = f"{reviewer}|{int(now + SESSION_SECONDS)}"
        return f"{body}|{self._sign('session|' + body)}"

    def reviewer(self, value: str | None, now: float) -> str | None:
        if not value or value.count("|") != 2:
            return None
        name, until, signature = value.split("|")
        body = f"{name}|{until}"
        if not hmac.compare_digest(signature, self._sign("session|" + body)):
            return None
        return name if until.isdigit() and int(until) > now else None

    def csrf(self, value: str, purpose: str = "form") -> str:
        return self._sign(f"csrf|{purpose}|{value}")

    def csrf_ok(self, value: str | None, given: str | None, purpose: str = "form") -> bool:
        return bool(value) and bool(given) and \
            hmac.compare_digest(self.csrf(value or "", purpose), given or "")


def install_review_page(app: FastAPI, desk: ReviewDesk, sessions: Sessions | None = None) -> None:
    sessions = sessions or Sessions()
    store = desk.store

    def signed_in(request: Request) -> str | None:
        name = sessions.reviewer(request.cookies.get(SESSION), desk.clock())
        return name if name is not None and reviewers.exists(store, name) else None

    def page(html: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(html, status, headers=HEADERS)

    def cookie(response: Response, request: Request, name: str, value: str,
               max_age: int | None) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/review", httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")

    def login_page(request: Request, error: str | None = None, status: int = 200) -> Response:
        nonce = request.cookies.get(PRESESSION) or secrets.token_urlsafe(24)
        response = page(render("login", csrf=sessions.csrf(nonce, "login"), error=error),
                        status)
        cookie(response, request, PRESESSION, nonce, 3600)
        return response

    async def form(request: Request) -> dict[str, str]:
        body = await request.body()
        if len(body) > FORM_BYTES:
            return {}
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in fields.items()}

    def see_other(where: str) -> Response:
        return RedirectResponse(where, 303, headers=HEADERS)

    @app.get("/review", include_in_schema=False)
    @app.get("/review/", include_in_schema=False)
    async def queue(request: Request) -> Response:
        name = await run_in_threadpool(signed_in, request)
        if name is None:
            return see_other("/review/login")
        task = await run_in_threadpool(desk.next_task, name)
        done = await run_in_threadpool(_done_note, desk, name,
                                       request.query_params.get("answered"))
        csrf = sessions.csrf(request.cookies[SESSION])
        if task is None:
            return page(render("task", task=None, reviewer=name, csrf=csrf, done=done,
                               error=ERRORS.get(request.query_params.get("error", ""))))
        content = task.content
        row = list((content.get("row") or {k: v for k, v in content.items()
                                            if k not in ("labels",)}).items())
        probabilities = sorted((content.get("probabilities") or {}).items(),
                               key=lambda kv: -float(kv[1]))
        return page(render("task", task=task, content=content, row=row,
                           probabilities=probabilities, reviewer=name, csrf=csrf, done=done,
                           error=ERRORS.get(request.query_params.get("error", "")),
                           until=time.strftime("%H:%M:%S", time.gmtime(task.until))))

    @app.get("/review/login", include_in_schema=False)
    async def login_form(request: Request) -> Response:
        return login_page(request)

    @app.post("/review/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        fields = await form(request)
        if not sessions.csrf_ok(request.cookies.get(PRESESSION), fields.get("csrf"), "login"):
            return login_page(request, "The form expired; sign in again.", 403)
        name, token = fields.get("reviewer", ""), fields.get("token", "")
        ok = await run_in_threadpool(reviewers.authenticate, store, name, token)
        desk.audit.record("sign-in" if ok else "sign-in-refused", worker=name[:64])
        if not ok:
            return login_page(request, "Unknown reviewer or wrong token.", 401)
        response = see_other("/review/")
        cookie(response, request, SESSION, sessions.issue(name, desk.clock()), SESSION_SECONDS)
        response.delete_cookie(PRESESSION, path="/review")
        return response

    @app.post("/review/answer", include_in_schema=False)
    async def answer(request: Request) -> Response:
        name = await run_in_threadpool(signed_in, request)
        if name is None:
            return see_other("/review/login")
        fields = await form(request)
        if not sessions.csrf_ok(request.cookies.get(SESSION), fields.get("csrf")):
            return page(render("login", csrf="", error="The form's security token is wrong; "
                               "reload the review page."), 403)
        loop = fields.get("loop", "")
        try:
            await run_in_threadpool(desk.submit, name, loop, fields.get("label", ""))
        except LeaseError:
            return see_other("/review/?error=lease")
        except TabpilotError:
            return see_other("/review/?error=label")
        return see_other("/review/?answered=" + quote(loop))

    @app.post("/review/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        fields = await form(request)
        if sessions.csrf_ok(request.cookies.get(SESSION), fields.get("csrf")):
            response = see_other("/review/login")
            response.delete_cookie(SESSION, path="/review")
            return response
        return see_other("/review/")


def _done_note(desk: ReviewDesk, worker: str, loop: str | None) -> str | None:
    """What became of the loop the reviewer just answered (the agreement, when done)."""
    if not loop:
        return None
    row = desk.store.find_resource(LOOP, loop)
    if row is None or worker not in {a["workerId"] for a in row.spec["answers"]}:
        return None
    if row.status == COMPLETED:
        c = row.spec["consensus"]
        return (f"Thank you. {loop} is complete: {c['label']} with "
                f"{c['agreement']:.0%} agreement among {c['reviewers']} reviewers.")
    if row.spec["needed"] > len(row.spec["answers"]):
        return f"Thank you. {loop} waits for {row.spec['needed'] - len(row.spec['answers'])} " \
               "more reviewer(s)."
    return f"Thank you. {loop} is {row.status}."
