"""The benchmarks' HTTP client (bench/serving.py): sequential and concurrent one-row CSV
requests on keep-alive connections, each answered 200, or the run stops saying why."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
from bench.serving import _http_concurrent, _http_sequential  # noqa: E402

from tabpilot.serving.app import ServerSettings, model_app  # noqa: E402

ROWS = ["C00001,12,plus,71.5\n", "C00002,40,basic,30\n"]


def test_sequential_and_concurrent_requests_are_timed(models, serve_app) -> None:
    server = serve_app(model_app(models["binary"], settings=ServerSettings()))
    times = _http_sequential(server.url, ROWS, 30)
    assert len(times) == 30 and (times > 0).all()
    concurrent, per_second = _http_concurrent(server.url, ROWS, 3, 0.5)
    assert len(concurrent) >= 3 and per_second > 0


def test_a_request_the_server_refuses_stops_the_run(models, serve_app) -> None:
    server = serve_app(model_app(models["binary"], settings=ServerSettings()))
    with pytest.raises(RuntimeError, match="HTTP 400"):
        _http_sequential(server.url, ["only,two\n"], 5)
