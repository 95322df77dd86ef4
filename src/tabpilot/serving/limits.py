"""What keeps one request, or one endpoint, from taking the whole server down.

    BodyLimit   pure ASGI middleware: a request body over its cap is answered 413 without
                being read (from Content-Length) or as soon as the bytes streamed in pass
                the cap (chunked bodies), so memory never grows past the cap
    Lane        one endpoint's predictions: at most `size` at once in worker threads, at
                most `queue` more waiting; beyond that a request is refused at once (503);
                a small request to a model known to be quick runs on the event loop

Both answer in SageMaker's shapes: sagemaker-runtime's (`x-amzn-ErrorType`, as
`serving.app.error_response` gives) on the data plane, AWS JSON (`__type`, as
`api.app.aws_error` gives) on the control plane at `POST /`.
"""

from __future__ import annotations

import functools
import os
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import FastAPI
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MiB = 1024 * 1024
INVOCATION_MB = 6.0  # SageMaker's real-time InvokeEndpoint payload limit
BODY_MB = 100.0
QUEUE = 64
# a small request to a model this quick runs on the event loop (Lane): the HTTP goal for
# one row (2 ms); a thread hand-off added 0.2-0.4 ms to models of 1-2 ms (bench notes)
INLINE_MS = 2.0
INLINE_BYTES = 16 * 1024  # a request body this small is a small request
RECENT = 8  # the small calls Lane judges a model's quickness by
T = TypeVar("T")


def default_concurrency() -> int:
    return 2 * (os.cpu_count() or 1)


def runtime_error(message: str, status: int, kind: str,
                  headers: dict[str, str] | None = None) -> JSONResponse:
    """sagemaker-runtime's error shape (what boto3's InvokeEndpoint parses)."""
    return JSONResponse({"error": message, "message": message}, status_code=status,
                        headers={"x-amzn-ErrorType": kind, **(headers or {})})


def control_plane_error(code: str, message: str, status: int,
                        headers: dict[str, str] | None = None) -> JSONResponse:
    """The awsJson 1.1 error shape of the SageMaker API."""
    return JSONResponse({"__type": code, "message": message, "Message": message},
                        status_code=status, media_type="application/x-amz-json-1.1",
                        headers={"x-amzn-RequestId": str(uuid.uuid4()),
                                 "x-amzn-ErrorType": code, **(headers or {})})


def too_large(path: str, cap: int) -> JSONResponse:
    option = "--max-invocation-mb" if path.endswith("/invocations") else "--max-body-mb"
    message = (f"the request body is over {cap / MiB:g} MiB, this server's limit for "
               f"{path}; send fewer rows per request, or start the server with a larger "
               f"{option}")
    close = {"connection": "close"}  # the rest of the body is never read
    if path == "/":
        return control_plane_error("ValidationException", message, 413, close)
    return runtime_error(message, 413, "ValidationError", close)


class _Refused(Exception):
    """The body passed its cap while the app was reading it; the 413 is sent already."""


class BodyLimit:
    """Cap request bodies: `invocation_bytes` on `.../invocations`, `body_bytes` elsewhere.

    A declared Content-Length over the cap is refused before a byte is read. Otherwise
    every body chunk the app receives is counted; at the first one past the cap the 413
    goes out, the app's `receive` raises, and whatever the app answers after is dropped.
    Install it outside every other middleware (`Capped` does), so that none of them can
    read a body past it.
    """

    def __init__(self, app: ASGIApp, invocation_bytes: int, body_bytes: int) -> None:
        self.app = app
        self.invocation_bytes, self.body_bytes = invocation_bytes, body_bytes

    def cap(self, path: str) -> int:
        return self.invocation_bytes if path.endswith("/invocations") else self.body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        cap = self.cap(path)
        declared = _content_length(scope)
        if declared is not None and declared > cap:
            await too_large(path, cap)(scope, receive, send)
            return
        received, refused, started = 0, False, False

        async def counted() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    refused = True
                    if not started:
                        await too_large(path, cap)(scope, receive, send)
                    raise _Refused
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if refused:  # the 413 went out; an error answer to the raise is dropped
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except _Refused:
            pass
        except BaseExceptionGroup as group:  # raised through a task group
            rest = group.subgroup(lambda exc: not isinstance(exc, _Refused))
            if rest is not None:
                raise rest from None


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class Full(Exception):
    """An endpoint's lane is full: its predictions running and its queue taken."""


class Lane:
    """One endpoint's predictions, off the event loop unless they are known to be quick.

    At most `size` run at once, each in a worker thread; at most `queue` more wait for a
    thread; a request beyond that raises `Full` at once (answered 503, Retry-After), so a
    slow or failing model fills its own lane and nobody else's. Threads come from anyio's
    pool under this lane's own limiter, not the default one shared with the rest of the
    server.

    A small request (`small`: a few rows) to an idle lane whose last RECENT small requests
    took at most `inline_ms` at the median runs on the event loop instead: handing it to a
    thread and back costs about as much as such a prediction (tens to hundreds of
    microseconds), and its Python holds the GIL on either thread. The loop is then held
    about `inline_ms`, as far as the recent calls tell; when they slow down, the next
    requests go back to threads.
    """

    def __init__(self, size: int, queue: int = QUEUE, inline_ms: float = INLINE_MS) -> None:
        self.size, self.queue = size, queue
        self.admitted = 0  # running and waiting; touched only on the event loop
        self.inline_seconds = inline_ms / 1000
        self.recent: deque[float] = deque(maxlen=RECENT)  # small calls' seconds, newest last
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, func: Callable[..., T], *args: Any, small: bool = False) -> T:
        if self.admitted >= self.size + self.queue:
            raise Full(f"{self.admitted} requests are running or waiting, the limit "
                       f"({self.size} at once, --max-concurrency, and {self.queue} "
                       "waiting, --max-queue)")
        if self._limiter is None:  # made on the event loop, where anyio can bind it
            self._limiter = anyio.CapacityLimiter(self.size)
        call = functools.partial(self._timed, func, *args) if small else \
            functools.partial(func, *args)
        self.admitted += 1
        try:
            if small and self.admitted == 1 and self.quick():
                return call()
            return await anyio.to_thread.run_sync(call, limiter=self._limiter)
        finally:
            self.admitted -= 1

    def forget(self) -> None:
        """Drop the recent calls' times (the endpoint now serves another model)."""
        self.recent.clear()

    def quick(self) -> bool:
        """Whether the last RECENT small calls took at most `inline_ms` at the median."""
        return len(self.recent) == RECENT and \
            sorted(self.recent)[RECENT // 2] <= self.inline_seconds

    def _timed(self, func: Callable[..., T], *args: Any) -> T:
        start = time.perf_counter()
        try:
            return func(*args)
        finally:
            self.recent.append(time.perf_counter() - start)  # deque appends are atomic


class Capped(FastAPI):
    """FastAPI with `BodyLimit` outside all its middleware, those added later included (each
    `add_middleware` goes outermost, so an added one would otherwise read bodies first)."""

    def __init__(self, *, max_invocation_mb: float = INVOCATION_MB,
                 max_body_mb: float = BODY_MB, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.body_caps = (int(max_invocation_mb * MiB), int(max_body_mb * MiB))

    def build_middleware_stack(self) -> ASGIApp:
        return BodyLimit(super().build_middleware_stack(), *self.body_caps)
