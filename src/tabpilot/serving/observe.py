"""What the servers tell their operator: an access log, Prometheus metrics, AWS-shaped errors.

    observe(app, ...)   one access-log line and one set of metric samples per request, and
                        GET /metrics (Prometheus text format) on the app
    aws_errors(app)     unknown paths, wrong methods and malformed requests answer in the
                        error shape the rest of the server uses, not FastAPI's {"detail": ...}

Shared by `tabpilot serve-model` (`model_app`) and `tabpilot serve` (`server_app`). The
observer wraps the whole app, body limit included (serving/limits.py), so a 413 or a 401
from the guard is logged and counted like any other answer.

Labels stay bounded whatever callers send: `route` is the route template
(`/endpoints/{name}/invocations`), never the raw path (`unmatched`: a path no route
answers, or a request the guard or the body limit refused before routing);
`model` and `operation` are set only by a route that found the model or the SageMaker
operation (`tag`), so a request for a made-up name adds no series. Each app has its own
`CollectorRegistry`, so two apps in one process (tests, a model beside a server) never
clash over metric names.

The log never holds a body, a query string, a header value, a token or a signature: only
method, path, status, timing, sizes, labels and the client's address.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tabpilot.errors import TabpilotError
from tabpilot.serving.limits import control_plane_error, runtime_error

access_log = logging.getLogger("tabpilot.access")
LOG_FORMATS = ("plain", "json")
UNMATCHED = "unmatched"  # the route label of a path no route answers
TAGS = "tabpilot.observe"  # scope key: the labels a route found (`tag`)
# seconds; predictions take from well under a millisecond to a few seconds
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
           10.0, 30.0)
JOB_STATUSES = ("InProgress", "Stopping", "Completed", "Failed", "Stopped")
# HTTP lets a client send any token as its method; others are one label value, "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


def tag(request: Request, *, model: str | None = None, operation: str | None = None) -> None:
    """Label this request with the model (endpoint) or SageMaker operation it reached.

    Routes call it only once the name is known to exist, which keeps the labels bounded."""
    found = request.scope.setdefault(TAGS, {})
    if model is not None:
        found["model"] = model
    if operation is not None:
        found["operation"] = operation


class Metrics:
    """The request metrics of one app, in the app's own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ("route", "method", "model", "operation")
        self.requests = Counter("tabpilot_http_requests", "HTTP requests answered, by status",
                                (*labels, "status"), registry=self.registry)
        self.errors = Counter("tabpilot_http_errors", "HTTP answers with status 400 or more, "
                              "by AWS error type (x-amzn-ErrorType)", (*labels, "error"),
                              registry=self.registry)
        self.latency = Histogram("tabpilot_http_request_duration_seconds",
                                 "time from the request's arrival to its answer's last byte",
                                 labels, buckets=BUCKETS, registry=self.registry)
        self.in_flight = Gauge("tabpilot_http_requests_in_flight",
                               "requests being answered now", registry=self.registry)

    def record(self, entry: Mapping[str, Any]) -> None:
        method = entry["method"] if entry["method"] in METHODS else "other"
        labels = (entry["route"], method, entry.get("model") or "",
                  entry.get("operation") or "")
        self.requests.labels(*labels, str(entry["status"])).inc()
        if entry["status"] >= 400:
            self.errors.labels(*labels, entry.get("error") or f"HTTP{entry['status']}").inc()
        self.latency.labels(*labels).observe(entry["duration_ms"] / 1000)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class JobsCollector(Collector):
    """`tabpilot_jobs{status}`: the workspace's jobs by status, read from the store at each
    scrape (a job run by the CLI or another process counts as soon as it is recorded)."""

    def __init__(self, list_jobs: Callable[[], Iterable[Any]]) -> None:
        self.list_jobs = list_jobs

    def describe(self) -> Iterable[GaugeMetricFamily]:  # registering reads no store
        return [GaugeMetricFamily("tabpilot_jobs", "AutoML jobs in the workspace by status",
                                  labels=["status"])]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        counts: dict[str, int] = dict.fromkeys(JOB_STATUSES, 0)
        for job in self.list_jobs():
            counts[job.status] = counts.get(job.status, 0) + 1
        family = GaugeMetricFamily("tabpilot_jobs", "AutoML jobs in the workspace by status",
                                   labels=["status"])
        for status, n in counts.items():
            family.add_metric([status], n)
        yield family


class EndpointsCollector(Collector):
    """`tabpilot_endpoints{state}`: endpoints loaded and serving, and those whose model
    would not load (they keep their last good model, if any)."""

    def __init__(self, loaded: Callable[[], int], failed: Callable[[], int]) -> None:
        self.loaded, self.failed = loaded, failed

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [GaugeMetricFamily("tabpilot_endpoints", "endpoints by state", labels=["state"])]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("tabpilot_endpoints", "endpoints by state", labels=["state"])
        family.add_metric(["loaded"], self.loaded())
        family.add_metric(["failed"], self.failed())
        yield family


class Observer:
    """ASGI middleware: times each HTTP request, then logs it and records its metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        seen: dict[str, Any] = {"status": None, "bytes_in": 0, "bytes_out": 0, "error": None,
                                "done": False}

        def done() -> None:
            if seen["done"]:
                return
            seen["done"] = True
            self.metrics.in_flight.dec()
            entry = _entry(scope, seen, start)
            try:
                self.metrics.record(entry)
                access_log.info(plain_line(entry), extra={"access": entry})
            except Exception:  # observing must never fail a request
                logging.getLogger("tabpilot.serving").exception("recording a request failed")

        async def counted_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen["bytes_in"] += len(message.get("body", b""))
            return message

        async def watched_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                for key, value in message.get("headers", ()):
                    if key.lower() == b"x-amzn-errortype":
                        seen["error"] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                seen["bytes_out"] += len(message.get("body", b""))
                if not message.get("more_body"):
                    # recorded before the last byte leaves: a client that has its answer
                    # finds it counted, in the log and at /metrics
                    done()
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, counted_receive, watched_send)
        finally:  # an exception that escaped every handler still gets its line
            done()


def _entry(scope: Scope, seen: Mapping[str, Any], start: float) -> dict[str, Any]:
    route = scope.get("route")
    tags = scope.get(TAGS, {})
    client = scope.get("client")
    status = seen["status"] or 500  # nothing was sent: the server's own 500 goes out
    return {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "client": f"{client[0]}:{client[1]}" if client else "-",
        "method": scope["method"],
        "path": scope["path"],  # never the query string
        "route": getattr(route, "path", None) or UNMATCHED,
        "status": status,
        "duration_ms": round((time.perf_counter() - start) * 1000, 3),
        "bytes_in": seen["bytes_in"],
        "bytes_out": seen["bytes_out"],
        "model": tags.get("model"),
        "operation": tags.get("operation"),
        "error": seen["error"] if status >= 400 else None,
    }


def plain_line(entry: Mapping[str, Any]) -> str:
    """`127.0.0.1:5123 POST /endpoints/churn/invocations 200 3.2ms in=812B out=40B
    model=churn`: what an operator greps for, in a fixed order."""
    line = (f"{entry['client']} {entry['method']} {entry['path']} {entry['status']} "
            f"{entry['duration_ms']:.1f}ms in={entry['bytes_in']}B out={entry['bytes_out']}B")
    for key in ("model", "operation", "error"):
        if entry.get(key):
            line += f" {key}={entry[key]}"
    return line


class AccessFormatter(logging.Formatter):
    """The access log's lines: plain text, or one JSON object per line (`json`)."""

    def __init__(self, fmt: str = "plain") -> None:
        super().__init__()
        self.json = fmt == "json"

    def format(self, record: logging.LogRecord) -> str:
        entry = getattr(record, "access", None)
        if entry is None:
            return super().format(record)
        if self.json:
            return json.dumps(entry, separators=(",", ":"))
        return f"{entry['time']} {record.getMessage()}"


def configure_access_log(fmt: str = "plain", stream: Any = None) -> logging.Handler:
    """Send the access log to stderr (or `stream`) in `fmt`; called once by the CLI."""
    if fmt not in LOG_FORMATS:
        raise TabpilotError(f"unknown log format {fmt!r}; use one of: {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(AccessFormatter(fmt))
    for old in list(access_log.handlers):
        access_log.removeHandler(old)
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False  # the root logger shows warnings only
    return handler


def observe(app: FastAPI, collectors: Iterable[Collector] = ()) -> Metrics:
    """Log and measure every request to `app`, and serve GET /metrics.

    The observer goes around the app's whole middleware stack, the body limit that
    `Capped` puts outermost included, by wrapping the stack Starlette builds on its first
    request."""
    metrics = Metrics()
    for collector in collectors:
        metrics.registry.register(collector)
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: Observer(build(), metrics)  # type: ignore[method-assign]
    app.state.metrics = metrics

    @app.get("/metrics")
    def prometheus() -> Response:  # sync: collectors read the store off the event loop
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return metrics


def aws_errors(app: FastAPI) -> None:
    """404, 405 and request-validation errors in AWS's shapes: the SageMaker API's at
    `POST /` (awsJson, `__type`), sagemaker-runtime's elsewhere (`x-amzn-ErrorType`),
    naming the routes the server does answer."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status, headers = exc.status_code, dict(exc.headers or {})
        path = request.url.path
        if status == 404:
            message = f"no route {request.method} {path}; this server answers {_routes(app)}"
        elif status == 405:
            message = (f"{path} does not answer {request.method}; it answers "
                       f"{headers.get('Allow', headers.get('allow', 'other methods'))}")
        else:
            message = str(exc.detail)
        return _shaped(path, message, status, headers)

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                             for e in exc.errors()[:5])
        return _shaped(request.url.path, f"invalid request: {problems}", 400, {})

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)


def _shaped(path: str, message: str, status: int, headers: dict[str, str]) -> Response:
    if path == "/":
        code = "UnknownOperationException" if status in (404, 405) else "ValidationException"
        return control_plane_error(code, message, status, headers)
    return runtime_error(message, status, "ValidationError" if status < 500 else "InternalFailure",
                         headers)


def _routes(app: FastAPI) -> str:
    found = []
    for route in app.routes:  # the app's own routes (the OpenAPI schema's is not one)
        methods = [m for m in sorted(getattr(route, "methods", None) or ()) if m != "HEAD"]
        if methods and getattr(route, "include_in_schema", False):
            found.append(f"{'|'.join(methods)} {getattr(route, 'path', '')}")
    return ", ".join(found)
