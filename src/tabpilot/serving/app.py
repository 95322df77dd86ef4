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
import hmac
import logging
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from tabpilot.artifacts import Model
from tabpilot.artifacts import load as load_model_dir
from tabpilot.errors import TabpilotError
from tabpilot.serving.capture import CaptureWriter
from tabpilot.serving.codec import BadRequest, decode, encode, parse_keys, predict_records
from tabpilot.store import Store

log = logging.getLogger("tabpilot.serving")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    workspace: Path = Path("./tabpilot-workspace")
    poll_seconds: float = 1.0
    output_keys: str | None = None

    def check(self) -> None:
        if self.host not in LOOPBACK and not self.token:
            raise TabpilotError(f"binding to {self.host} exposes the server beyond this machine; "
                                "set an API token with --token or TABPILOT_TOKEN")


@dataclass
class Live:
    """A loaded model behind a name."""

    model: Model
    version: int
    output_keys: str | None = None
    capture: CaptureWriter | None = None


def invoke(live: Live, body: bytes, content_type: str | None, accept: str | None,
           keys_header: str | None) -> Response:
    """Decode, predict, encode; a bad request becomes a 4xx naming the problem."""
    try:
        keys = parse_keys(keys_header or live.output_keys, live.model)
        frame = decode(body, content_type, live.model)
        records = predict_records(live.model, frame, keys)
        payload, kind = encode(records, accept, keys)
    except BadRequest as exc:
        return error_response(str(exc), exc.status)
    except TabpilotError as exc:
        return error_response(str(exc), 400)
    if live.capture is not None and live.capture.sampled():
        live.capture.write(body, content_type or "text/csv", payload, kind)
    return Response(payload, media_type=kind)


RUNTIME_ERRORS = {400: "ValidationError", 404: "ValidationError", 413: "ValidationError",
                  415: "ValidationError", 424: "ModelError", 500: "InternalFailure"}


def error_response(message: str, status: int) -> JSONResponse:
    """A 4xx/5xx naming the problem, with sagemaker-runtime's error type for boto3."""
    kind = RUNTIME_ERRORS.get(status, "ValidationError" if status < 500 else "InternalFailure")
    return JSONResponse({"error": message, "message": message}, status_code=status,
                        headers={"x-amzn-ErrorType": kind})


def _guard(app: FastAPI, token: str | None) -> None:
    if not token:
        return

    @app.middleware("http")
    async def check_token(request: Request, call_next):
        if request.scope.get("tabpilot.verified"):  # an AWS signature was checked already
            return await call_next(request)
        given = request.headers.get("x-tabpilot-token") or \
            request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return JSONResponse({"error": "missing or wrong API token; send "
                                          "'Authorization: Bearer TOKEN'"}, status_code=401)
        return await call_next(request)


INLINE_BYTES = 64 * 1024  # smaller bodies are answered on the event loop: no thread hop


async def _answer(live: Live, request: Request) -> Response:
    body = await request.body()
    args = (live, body, request.headers.get("content-type"), request.headers.get("accept"),
            _keys_header(request))
    if len(body) <= INLINE_BYTES:
        return invoke(*args)
    return await run_in_threadpool(invoke, *args)


def _keys_header(request: Request) -> str | None:
    return request.headers.get("x-tabpilot-output-keys") or \
        request.query_params.get("output_keys")


def model_app(model_dir: str | Path, output_keys: str | None = None,
              token: str | None = None) -> FastAPI:
    """One model, SageMaker's container contract."""
    live = Live(load_model_dir(model_dir), 1, output_keys)
    app = FastAPI(title="tabpilot model", docs_url=None, redoc_url=None)
    _guard(app, token)

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        return await _answer(live, request)

    return app


class EndpointRegistry:
    """The endpoints of a workspace, loaded and kept in step with the store."""

    def __init__(self, store: Store, capture_root: Path) -> None:
        self.store = store
        self.capture_root = capture_root
        self._live: dict[str, Live] = {}
        self.failures: dict[str, tuple[int, str]] = {}  # name -> (version, why it won't load)
        self._lock = threading.Lock()  # one refresh at a time; readers never wait

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
                    model = load_model_dir(row.model_dir)  # fully loaded before the swap
                except TabpilotError as exc:
                    if self.failures.get(name, (0, ""))[0] != row.version:
                        log.error("endpoint %s: cannot load %s: %s", name, row.model_dir, exc)
                    self.failures[name] = (row.version, str(exc))
                    continue
                self.failures.pop(name, None)
                root = Path(row.capture_dir) if row.capture_dir else self.capture_root
                capture = CaptureWriter(root, name, row.capture_percent) \
                    if row.capture_percent > 0 else None
                self._live[name] = Live(model, row.version, row.output_keys, capture)


def server_app(settings: ServerSettings) -> FastAPI:
    """Many named endpoints on one port, following the store."""
    store = Store.for_workspace(settings.workspace)
    registry = EndpointRegistry(store, settings.workspace / "capture")

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
        yield
        task.cancel()

    app = FastAPI(title="tabpilot", lifespan=lifespan, docs_url=None, redoc_url=None)
    _guard(app, settings.token)
    app.state.registry = registry

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
        return await _answer(live, request)

    return app
