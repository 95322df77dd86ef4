"""The server's limits over real HTTP: body caps (413), per-endpoint lanes (503), and
endpoints whose model will not load."""

from __future__ import annotations

import json
import select
import shutil
import socket
import threading
from pathlib import Path

import httpx
import pytest
from servinglib import churn_table, wait_until

import tabpilot.serving.app as serving
from tabpilot.api.app import install
from tabpilot.artifacts import load
from tabpilot.artifacts.manifest import MANIFEST, PREDICTOR, sha256
from tabpilot.serving.app import EndpointRegistry, ServerSettings, model_app, server_app
from tabpilot.serving.limits import MiB
from tabpilot.store import Store

ROWS = churn_table(20, seed=7).drop(columns="label")
BODY = ROWS.to_csv(index=False, header=False)
CSV = {"Content-Type": "text/csv", "Accept": "text/csv"}
ANY = object()


def _settings(ws: Path, **kw) -> ServerSettings:
    return ServerSettings(workspace=ws, poll_seconds=0.2, **kw)


def _response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 response (the server closes the connection after a 413)."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    headers = {k.lower(): v for k, v in headers.items()}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _declared(url: str, path: str, length: int, headers: str = "") -> tuple[int, dict, bytes]:
    """Headers declaring a `length`-byte body, and no body: the answer must come anyway."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/csv\r\n"
                     f"{headers}Content-Length: {length}\r\n\r\n".encode())
        return _response(sock)


def _chunked(url: str, path: str, limit: int, headers: str = "") -> tuple[int, dict, bytes, int]:
    """Stream a chunked body of up to `limit` bytes, stopping when an answer arrives."""
    host, port = url.removeprefix("http://").split(":")
    chunk = b"1,plus,2\n" * 7000  # 63 KB of CSV rows
    sent = 0
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/csv\r\n"
                     f"{headers}Transfer-Encoding: chunked\r\n\r\n".encode())
        while sent < limit and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        status, answer_headers, body = _response(sock)
        return status, answer_headers, body, sent


@pytest.fixture
def capped(models, serve_app):
    settings = ServerSettings(max_invocation_mb=1, max_body_mb=0.5)
    return serve_app(model_app(models["binary"], settings=settings))


def test_a_declared_oversize_body_is_refused_before_it_is_read(capped) -> None:
    status, headers, body = _declared(capped.url, "/invocations", 300 * MiB)
    assert status == 413
    assert headers["x-amzn-errortype"] == "ValidationError"
    assert "over 1 MiB" in json.loads(body)["message"]
    assert httpx.get(f"{capped.url}/ping").status_code == 200


def test_a_chunked_body_is_cut_off_at_the_cap(capped) -> None:
    status, headers, body, sent = _chunked(capped.url, "/invocations", 64 * MiB)
    assert status == 413
    assert headers["x-amzn-errortype"] == "ValidationError"
    assert "--max-invocation-mb" in json.loads(body)["error"]
    assert sent < 32 * MiB  # the server stopped reading, not the client
    assert httpx.get(f"{capped.url}/ping").status_code == 200


def test_bodies_under_the_cap_pass_declared_or_chunked(capped, models) -> None:
    expected = list(load(models["binary"]).predict(ROWS))
    r = httpx.post(f"{capped.url}/invocations", content=BODY, headers=CSV)
    assert r.status_code == 200
    streamed = httpx.post(f"{capped.url}/invocations", headers=CSV,
                          content=(line.encode() + b"\n" for line in BODY.splitlines()))
    assert streamed.status_code == 200
    assert [row.split(",")[0] for row in streamed.text.split()] == expected
    # other routes have the other cap: 0.5 MiB
    assert _declared(capped.url, "/ping", MiB)[0] == 413


def test_the_control_plane_answers_413_in_aws_json(tmp_path: Path, serve_app) -> None:
    app = server_app(_settings(tmp_path, max_body_mb=0.25))
    install(app, tmp_path)
    server = serve_app(app)
    target = "X-Amz-Target: SageMaker.ListEndpoints\r\n"
    for status, headers, body in (_declared(server.url, "/", MiB, target),
                                  _chunked(server.url, "/", 8 * MiB, target)[:3]):
        assert status == 413
        assert headers["content-type"] == "application/x-amz-json-1.1"
        error = json.loads(body)
        assert error["__type"] == "ValidationException" and "--max-body-mb" in error["message"]
    r = httpx.post(f"{server.url}/", content=b"{}", headers={
        "X-Amz-Target": "SageMaker.ListEndpoints", "Content-Type": "application/x-amz-json-1.1"})
    assert r.status_code == 200 and r.json()["Endpoints"] == []


@pytest.fixture
def slow(monkeypatch):
    """Make the predictions of one model wait until released (the others run as usual)."""
    class Slow:
        model: object = None
        entered = threading.Semaphore(0)
        release = threading.Event()

    real = serving.predict_records

    def predict(model, frame, keys):
        if model is Slow.model or Slow.model is ANY:
            Slow.entered.release()
            assert Slow.release.wait(30)
        return real(model, frame, keys)

    monkeypatch.setattr(serving, "predict_records", predict)
    yield Slow
    Slow.release.set()


def _post(url: str, out: list[httpx.Response]) -> threading.Thread:
    thread = threading.Thread(target=lambda: out.append(
        httpx.post(url, content=BODY, headers=CSV, timeout=30)))
    thread.start()
    return thread


def test_a_full_endpoint_answers_503_and_the_others_are_unaffected(tmp_path: Path, models,
                                                                   serve_app, slow) -> None:
    store = Store.for_workspace(tmp_path)
    store.put_endpoint("slow", str(models["binary"]))
    store.put_endpoint("fast", str(models["binary_b"]))
    app = server_app(_settings(tmp_path, max_concurrency=1, max_queue=1))
    server = serve_app(app)
    registry: EndpointRegistry = app.state.registry
    wait_until(lambda: registry.loaded("slow") is not None)
    slow.model = registry.loaded("slow").model
    answers: list[httpx.Response] = []
    first = _post(f"{server.url}/endpoints/slow/invocations", answers)
    assert slow.entered.acquire(timeout=10)  # running, holding the one thread
    second = _post(f"{server.url}/endpoints/slow/invocations", answers)
    wait_until(lambda: registry.loaded("slow").lane.admitted == 2)  # waiting in the queue
    refused = httpx.post(f"{server.url}/endpoints/slow/invocations", content=BODY, headers=CSV)
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["x-amzn-errortype"] == "ServiceUnavailable"
    assert "endpoint slow is busy" in refused.json()["message"]
    for _ in range(5):  # the event loop and the other endpoint are free
        assert httpx.post(f"{server.url}/endpoints/fast/invocations", content=BODY,
                          headers=CSV).status_code == 200
        assert httpx.get(f"{server.url}/ping").status_code == 200
    assert not answers
    slow.release.set()
    first.join(30)
    second.join(30)
    assert [r.status_code for r in answers] == [200, 200]
    assert registry.loaded("slow").lane.admitted == 0


def test_a_slow_prediction_does_not_hold_the_event_loop(models, serve_app, slow) -> None:
    app = model_app(models["binary"], settings=ServerSettings(max_concurrency=1, max_queue=0))
    server = serve_app(app)
    slow.model = ANY
    answers: list[httpx.Response] = []
    running = _post(f"{server.url}/invocations", answers)
    assert slow.entered.acquire(timeout=10)
    assert httpx.get(f"{server.url}/ping").status_code == 200
    busy = httpx.post(f"{server.url}/invocations", content=BODY, headers=CSV)
    assert busy.status_code == 503 and "the model is busy" in busy.json()["message"]
    slow.release.set()
    running.join(30)
    assert [r.status_code for r in answers] == [200]


def _corrupt_copy(model_dir: Path, target: Path, how: str) -> Path:
    """A copy of a model that cannot load: `manifest` unparseable, or `pickle` garbage
    whose checksum the manifest agrees with (so only unpickling fails)."""
    shutil.copytree(model_dir, target)
    if how == "manifest":
        (target / MANIFEST).write_text("{not json")
    else:
        (target / PREDICTOR).write_bytes(b"\x80\x05this is not a pickle")
        listed = json.loads((target / MANIFEST).read_text())
        listed["files"][PREDICTOR]["sha256"] = sha256(target / PREDICTOR)
        (target / MANIFEST).write_text(json.dumps(listed))
    return target


def test_an_endpoint_whose_model_will_not_load_keeps_its_last_model(tmp_path: Path, models,
                                                                    serve_app) -> None:
    store = Store.for_workspace(tmp_path / "ws")
    store.put_endpoint("kept", str(models["binary"]))
    store.put_endpoint("other", str(models["binary_b"]))
    app = server_app(_settings(tmp_path / "ws"))
    install(app, tmp_path / "ws")
    server = serve_app(app)
    registry: EndpointRegistry = app.state.registry
    expected = list(load(models["binary"]).predict(ROWS))
    bad_pickle = _corrupt_copy(models["binary_b"], tmp_path / "pickle", "pickle")
    bad_manifest = _corrupt_copy(models["binary_b"], tmp_path / "manifest", "manifest")
    store.put_endpoint("kept", str(bad_pickle))  # version 2, which will not load
    store.put_endpoint("broken", str(bad_manifest))  # never loaded
    wait_until(lambda: {"kept", "broken"} <= set(registry.failures))
    assert "UnpicklingError" in registry.failures["kept"][1]
    assert "manifest.json" in registry.failures["broken"][1]

    def describe(name: str) -> dict:
        return httpx.post(f"{server.url}/", json={"EndpointName": name}, headers={
            "X-Amz-Target": "SageMaker.DescribeEndpoint",
            "Content-Type": "application/x-amz-json-1.1"}).json()

    kept = describe("kept")
    assert kept["EndpointStatus"] == "InService" and "UnpicklingError" in kept["FailureReason"]
    broken = describe("broken")
    assert broken["EndpointStatus"] == "Failed" and "manifest" in broken["FailureReason"]
    r = httpx.post(f"{server.url}/endpoints/kept/invocations", content=BODY, headers=CSV)
    assert r.status_code == 200
    assert [line.split(",")[0] for line in r.text.split()] == expected  # the last good model
    assert httpx.post(f"{server.url}/endpoints/other/invocations", content=BODY,
                      headers=CSV).status_code == 200
    assert httpx.post(f"{server.url}/endpoints/broken/invocations", content=BODY,
                      headers=CSV).status_code == 404
    store.put_endpoint("kept", str(models["binary_b"]))  # a good version 3 clears the failure
    wait_until(lambda: "kept" not in registry.failures)
    assert registry.loaded("kept").version == 3


def test_refresh_records_any_exception_per_endpoint(tmp_path: Path, models,
                                                    monkeypatch) -> None:
    store = Store.for_workspace(tmp_path)
    store.put_endpoint("a", str(models["binary"]))
    store.put_endpoint("b", str(models["regression"]))
    registry = EndpointRegistry(store, tmp_path / "capture")
    real = serving.load_model_dir

    def load_or_fail(directory):
        if Path(directory) == Path(models["regression"]):
            raise PermissionError(13, "Permission denied", str(directory))
        return real(directory)

    monkeypatch.setattr(serving, "load_model_dir", load_or_fail)
    registry.refresh()  # raises nothing
    assert registry.names() == ["a"]
    assert registry.failures["b"][0] == 1 and "PermissionError" in registry.failures["b"][1]
