"""HTTP inference: the single-model container contract and the multi-endpoint server.

    model_app(model_dir)   GET /ping, POST /invocations            (tabpilot serve-model)
    server_app(settings)   GET /ping, POST /endpoints/{name}/invocations, GET /endpoints
                                                                     (tabpilot serve)

Endpoints live in the store; the server re-reads them every `poll_seconds`, loads a new
model version completely before swapping it in, and swaps with one dict assignment, so
requests in flight finish on the old model and none fails during a redeploy.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from tabpilot.artifacts import Model
from tabpilot.artifacts.store import ArtifactStore, local_copy
from tabpilot.artifacts.store import for_workspace as artifact_store
from tabpilot.artifacts.validate import HTTP_HINT
from tabpilot.errors import TabpilotError
from tabpilot.serving.capture import CaptureWriter
from tabpilot.serving.codec import (
    INFERENCE_ID_HEADER,
    ON_BAD_VALUE_HEADER,
    BadRequest,
    decode,
    encode,
    inference_id,
    parse_keys,
    predict_records,
)
from tabpilot.serving.forecasting import ForecastModel
from tabpilot.serving.forecasting import load as load_model_dir
from tabpilot.serving.guard import AccessPolicy, Guard
from tabpilot.serving.limits import (
    BODY_MB,
    INLINE_BYTES,
    INVOCATION_MB,
    QUEUE,
    Capped,
    Full,
    Lane,
    default_concurrency,
    runtime_error,
)
from tabpilot.serving.observe import EndpointsCollector, JobsCollector, aws_errors, observe, tag
from tabpilot.store import Store

if TYPE_CHECKING:
    from tabpilot.store.metadata import EndpointRow

log = logging.getLogger("tabpilot.serving")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    credentials: dict[str, str] = {}  # AWS access key id -> secret, for SigV4 requests
    allowed_hosts: list[str] = []  # Host names accepted on loopback beside loopback's own
    allowed_origins: list[str] = []  # browser origins accepted beside the server's own
    workspace: Path = Path("./tabpilot-workspace")
    poll_seconds: float = 1.0
    output_keys: str | None = None
    max_invocation_mb: float = Field(INVOCATION_MB, gt=0)  # per /invocations body
    max_body_mb: float = Field(BODY_MB, gt=0)  # per body elsewhere (the SageMaker API)
    max_concurrency: int = Field(default_factory=default_concurrency, ge=1)  # per endpoint
    max_queue: int = Field(QUEUE, ge=0)  # requests waiting per endpoint beyond those
    on_bad_value: Literal["error", "missing"] = "error"  # unreadable values: 400, or missing

    def lane(self) -> Lane:
        return Lane(self.max_concurrency, self.max_queue)

    def app(self, title: str, **kwargs: object) -> Capped:
        return Capped(title=title, max_invocation_mb=self.max_invocation_mb,
                      max_body_mb=self.max_body_mb, docs_url=None, redoc_url=None, **kwargs)

    def check(self) -> None:
        if self.host not in LOOPBACK and not self.token and not self.credentials:
            raise TabpilotError(f"binding to {self.host} exposes the server beyond this machine; "
                                "set an API token with --token or TABPILOT_TOKEN, or AWS "
                                "credentials with --aws-access-key-id/--aws-secret-access-key")

    def policy(self) -> AccessPolicy:
        return AccessPolicy(self.token, dict(self.credentials), self.host in LOOPBACK,
                            tuple(self.allowed_hosts), tuple(self.allowed_origins))


@dataclass
class Live:
    """A loaded model behind a name."""

    model: Model | ForecastModel
    version: int
    output_keys: str | None = None
    capture: CaptureWriter | None = None
    lane: Lane = field(default_factory=lambda: Lane(default_concurrency()))  # across swaps
    on_bad_value: str = "error"  # a request's X-Tabpilot-On-Bad-Value header overrides it
    # sees each answered prediction (model, checked rows, inference id): review routing;
    # it must only enqueue, and its failure never fails the request
    tap: Callable[[Model, object, str], None] | None = None


def invoke(live: Live, body: bytes, content_type: str | None, accept: str | None,
           keys_header: str | None, on_bad_value: str | None = None,
           inference_header: str | None = None) -> Response:
    """Decode, check, predict, encode; a bad request becomes a 4xx naming the problem.
    The check's counts (values read as missing, unseen categories) go back as headers
    and into the capture record."""
    if not isinstance(live.model, Model):  # forecasting and built-in algorithm models
        return _forecast(live, body, content_type, accept, inference_header)
    try:
        event = inference_id(inference_header)
        keys = parse_keys(keys_header or live.output_keys, live.model)
        frame = decode(body, content_type, live.model)
        frame, found = live.model.check(frame, on_bad_value or live.on_bad_value,
                                        hint=HTTP_HINT)
        records = predict_records(live.model, frame, keys)
        payload, kind = encode(records, accept, keys)
    except BadRequest as exc:
        return error_response(str(exc), exc.status)
    except TabpilotError as exc:
        return error_response(str(exc), 400)
    if live.capture is not None and live.capture.sampled():
        live.capture.write(body, content_type or "text/csv", payload, kind,
                           inference_id=event, input_check=found.record())
    if live.tap is not None:
        try:
            live.tap(live.model, frame, event)
        except Exception:  # the caller has its prediction whatever review routing does
            log.exception("handing a prediction to review routing failed")
    return Response(payload, media_type=kind,
                    headers={**found.headers(), INFERENCE_ID_HEADER: event})


def _forecast(live: Live, body: bytes, content_type: str | None, accept: str | None,
              inference_header: str | None) -> Response:
    """A forecasting model's answer (serving/forecasting.py): the horizon after each
    item's history; no input check counts and no review routing (there are no labels)."""
    try:
        event = inference_id(inference_header)
        payload, kind = live.model.answer(body, content_type, accept)
    except BadRequest as exc:
        return error_response(str(exc), exc.status)
    except TabpilotError as exc:
        return error_response(str(exc), 400)
    if live.capture is not None and live.capture.sampled():
        live.capture.write(body, content_type or "text/csv", payload, kind, inference_id=event)
    return Response(payload, media_type=kind, headers={INFERENCE_ID_HEADER: event})


RUNTIME_ERRORS = {400: "ValidationError", 404: "ValidationError", 413: "ValidationError",
                  415: "ValidationError", 424: "ModelError", 500: "InternalFailure",
                  503: "ServiceUnavailable"}


def error_response(message: str, status: int,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """A 4xx/5xx naming the problem, with sagemaker-runtime's error type for boto3."""
    kind = RUNTIME_ERRORS.get(status, "ValidationError" if status < 500 else "InternalFailure")
    return runtime_error(message, status, kind, headers)


def _guard(app: FastAPI, policy: AccessPolicy) -> None:
    """Check every request against `policy` (serving/guard.py); kept as app.state.access, so
    that `api.install` can add the SageMaker credentials to the same policy."""
    app.add_middleware(Guard, policy=policy)
    app.state.access = policy


async def _answer(live: Live, request: Request, what: str) -> Response:
    """Predict in the endpoint's lane (serving/limits.py): a slow model holds up only its
    own requests; a small one to a quick model is answered on the event loop."""
    body = await request.body()  # read before taking a place: a slow upload holds none
    try:
        return await live.lane.run(invoke, live, body, request.headers.get("content-type"),
                                   request.headers.get("accept"), _keys_header(request),
                                   request.headers.get(ON_BAD_VALUE_HEADER),
                                   request.headers.get(INFERENCE_ID_HEADER),
                                   small=len(body) <= INLINE_BYTES)
    except Full as exc:
        return error_response(f"{what} is busy: {exc}; retry shortly", 503,
                              {"Retry-After": "1"})


def _keys_header(request: Request) -> str | None:
    return request.headers.get("x-tabpilot-output-keys") or \
        request.query_params.get("output_keys")


def model_app(model_dir: str | Path, output_keys: str | None = None,
              token: str | None = None, settings: ServerSettings | None = None) -> FastAPI:
    """One model, SageMaker's container contract (`settings` gives the limits only)."""
    settings = settings or ServerSettings()
    live = Live(load_model_dir(model_dir), 1, output_keys, lane=settings.lane(),
                on_bad_value=settings.on_bad_value)
    app = settings.app("tabpilot model")
    _guard(app, settings.model_copy(update={"token": token or settings.token}).policy())
    observe(app)
    aws_errors(app)
    model_name = str(live.model.metadata.get("candidate") or Path(model_dir).name)

    @app.get("/ping")
    async def ping() -> dict[str, str]:  # async: no worker thread to say ok
        return {"status": "ok"}

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        tag(request, model=model_name)
        return await _answer(live, request, "the model")

    return app


class EndpointRegistry:
    """The endpoints of a workspace, loaded and kept in step with the store."""

    def __init__(self, store: Store, capture_root: Path,
                 lane: Callable[[], Lane] = lambda: Lane(default_concurrency())) -> None:
        self.store = store
        self.capture_root = capture_root
        self.lane = lane  # a new endpoint's; a redeployed one keeps its own
        self._live: dict[str, Live] = {}
        self.failures: dict[str, tuple[int, str]] = {}  # name -> (version, why it won't load)
        self._lock = threading.Lock()  # one refresh at a time; readers never wait
        self.on_bad_value = "error"  # the server's policy for unreadable values
        # model directory -> loaded model; the SageMaker API adds the built-in algorithms'
        # model.tar.gz contents (api/training.py), which answer requests themselves
        # (None: serving/forecasting.load, read when called)
        self.load: Callable[[str], object] | None = None
        # where published models are read from (artifacts/store.py); None: the workspace
        self.artifacts: ArtifactStore | None = None
        # tap(endpoint, model, rows, inference id) after each prediction (review routing)
        self.tap: Callable[[str, Model, object, str], None] | None = None

    def loaded(self, name: str) -> Live | None:
        """The endpoint if it is loaded already (no store access)."""
        return self._live.get(name)

    def get(self, name: str) -> Live | None:
        live = self._live.get(name)
        if live is None:
            self.refresh()
            live = self._live.get(name)
        return live

    def names(self) -> list[str]:
        return sorted(self._live)

    def refresh(self) -> None:
        with self._lock:
            rows = {r.name: r for r in self.store.list_endpoints()}
            for name in list(self._live):
                if name not in rows:
                    del self._live[name]
            for name, row in rows.items():
                current = self._live.get(name)
                if current is not None and current.version == row.version:
                    continue
                try:
                    live = self._load(name, row, current)  # fully loaded before the swap
                except Exception as exc:  # any: one bad model must not stop the others
                    self._failed(name, row, exc)
                    continue  # a redeployed endpoint keeps answering with its last model
                self.failures.pop(name, None)
                self._live[name] = live

    def _load(self, name: str, row: EndpointRow, current: Live | None) -> Live:
        model = (self.load or load_model_dir)(self._local(row.model_dir))
        root = Path(row.capture_dir) if row.capture_dir else self.capture_root
        capture = CaptureWriter(root, name, row.capture_percent, variant=row.variant) \
            if row.capture_percent > 0 else None
        lane = current.lane if current is not None else self.lane()
        lane.forget()  # how quick the last model was says nothing of this one
        tap = functools.partial(self.tap, name) if self.tap is not None else None
        return Live(model, row.version, row.output_keys, capture, lane, self.on_bad_value, tap)

    def _local(self, model_dir: str) -> str:
        """The endpoint's model as a local folder: with an artifact store, the verified
        copy of what the job (or CreateModel) published, so every server sharing the
        store serves the same bytes, whichever machine made the model."""
        if self.artifacts is None or self.store.root is None:
            return model_dir
        return str(local_copy(model_dir, self.store.root, self.artifacts))

    def _failed(self, name: str, row: EndpointRow, exc: Exception) -> None:
        if self.failures.get(name, (0, ""))[0] != row.version:  # once per version
            if isinstance(exc, TabpilotError):
                log.error("endpoint %s: cannot load %s: %s", name, row.model_dir, exc)
            else:  # unexpected: keep the traceback
                log.error("endpoint %s: cannot load %s", name, row.model_dir, exc_info=exc)
        reason = str(exc) if isinstance(exc, TabpilotError) else \
            f"cannot load the model in {row.model_dir}: {type(exc).__name__}: {exc}"
        self.failures[name] = (row.version, reason)


def server_app(settings: ServerSettings) -> FastAPI:
    """Many named endpoints on one port, following the store."""
    store = Store.for_workspace(settings.workspace)
    registry = EndpointRegistry(store, settings.workspace / "capture", settings.lane)
    registry.artifacts = artifact_store(settings.workspace)
    registry.on_bad_value = settings.on_bad_value

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(registry.refresh)

        async def follow() -> None:
            while True:
                await asyncio.sleep(settings.poll_seconds)
                try:
                    await run_in_threadpool(registry.refresh)
                except Exception:  # keep serving what is loaded
                    log.exception("refreshing endpoints failed")

        task = asyncio.create_task(follow())
        stop = threading.Event()
        threads = [threading.Thread(target=work, args=(stop,), daemon=True,
                                    name=f"background-{i}")
                   for i, work in enumerate(app.state.background)]
        for thread in threads:
            thread.start()
        yield
        task.cancel()
        stop.set()
        for thread in threads:
            thread.join(timeout=10)

    app = settings.app("tabpilot", lifespan=lifespan)
    _guard(app, settings.policy())
    observe(app, [JobsCollector(store.list_jobs),
                  EndpointsCollector(lambda: len(registry.names()),
                                     lambda: len(registry.failures))])
    aws_errors(app)
    app.state.registry = registry
    # work that lives as long as the server, each a callable run(stop: threading.Event) in
    # its own thread until `stop` is set (the SageMaker API adds its monitoring scheduler)
    app.state.background = []

    @app.get("/ping")
    def ping() -> dict[str, object]:
        return {"status": "ok", "endpoints": registry.names()}

    @app.get("/endpoints")
    def endpoints() -> dict[str, object]:
        return {"Endpoints": [{"EndpointName": n, "Version": live.version}
                              for n in registry.names() if (live := registry.loaded(n))]}

    @app.post("/endpoints/{name}/invocations")
    async def invocations(name: str, request: Request) -> Response:
        live = registry.loaded(name) or await run_in_threadpool(registry.get, name)
        if live is None:
            return error_response(f"Endpoint {name} not found: `tabpilot endpoints` lists "
                                  "the endpoints", 404)
        tag(request, model=name)  # only a deployed name: labels stay bounded
        return await _answer(live, request, f"endpoint {name}")

    return app
