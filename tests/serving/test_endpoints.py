"""The multi-endpoint server over real HTTP: deploy, swap, undeploy, restart, tokens, capture."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from servinglib import churn_table, wait_until

from tabpilot.artifacts import load
from tabpilot.errors import TabpilotError
from tabpilot.serving.app import ServerSettings, server_app
from tabpilot.store import Store

ROWS = churn_table(40, seed=5).drop(columns="label")
BODY = ROWS.to_csv(index=False, header=False)
CSV = {"Content-Type": "text/csv", "Accept": "text/csv"}


def _labels(response: httpx.Response) -> list[str]:
    return [line.split(",")[0] for line in response.text.strip().splitlines()]


def _settings(ws: Path, **kw) -> ServerSettings:
    return ServerSettings(workspace=ws, poll_seconds=0.2, **kw)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tabpilot.cli", *args],
                          capture_output=True, text=True, timeout=120)


def test_deploy_with_the_cli_then_invoke(tmp_path: Path, models, serve_app) -> None:
    ws = tmp_path / "ws"
    done = _cli("deploy", str(models["binary"]), "--endpoint", "churn", "-w", str(ws))
    assert done.returncode == 0, done.stderr
    server = serve_app(server_app(_settings(ws)))
    r = httpx.post(f"{server.url}/endpoints/churn/invocations", content=BODY, headers=CSV)
    assert r.status_code == 200, r.text
    assert _labels(r) == list(load(models["binary"]).predict(ROWS))
    assert "churn" in httpx.get(f"{server.url}/ping").json()["endpoints"]
    listed = json.loads(_cli("endpoints", "--json", "-w", str(ws)).stdout)["Endpoints"]
    assert [e["EndpointName"] for e in listed] == ["churn"]


def test_unknown_endpoint_is_404(tmp_path: Path, serve_app) -> None:
    server = serve_app(server_app(_settings(tmp_path)))
    r = httpx.post(f"{server.url}/endpoints/nope/invocations", content=BODY, headers=CSV)
    assert r.status_code == 404
    assert "nope" in r.json()["error"]


def test_redeploy_swaps_atomically_under_concurrent_requests(tmp_path: Path, models,
                                                             serve_app) -> None:
    store = Store.for_workspace(tmp_path)
    store.put_endpoint("live", str(models["binary"]))
    server = serve_app(server_app(_settings(tmp_path)))
    expected_a = list(load(models["binary"]).predict(ROWS))
    expected_b = list(load(models["binary_b"]).predict(ROWS))
    assert expected_a != expected_b  # the swap must be visible in the answers
    statuses: list[int] = []
    answers: list[list[str]] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client() as c:
            while not stop.is_set():
                r = c.post(f"{server.url}/endpoints/live/invocations", content=BODY, headers=CSV)
                statuses.append(r.status_code)
                if r.status_code == 200:
                    answers.append(_labels(r))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    wait_until(lambda: len(statuses) > 40)
    store.put_endpoint("live", str(models["binary_b"]))
    wait_until(lambda: answers and answers[-1] == expected_b)
    n_after = len(statuses)
    wait_until(lambda: len(statuses) > n_after + 40)
    stop.set()
    for t in threads:
        t.join()
    assert set(statuses) == {200}
    assert all(a in (expected_a, expected_b) for a in answers)  # never a mix or a failure
    assert answers[0] == expected_a and answers[-1] == expected_b


def test_undeploy_stops_serving(tmp_path: Path, models, serve_app) -> None:
    store = Store.for_workspace(tmp_path)
    store.put_endpoint("gone", str(models["binary"]))
    server = serve_app(server_app(_settings(tmp_path)))
    url = f"{server.url}/endpoints/gone/invocations"
    assert httpx.post(url, content=BODY, headers=CSV).status_code == 200
    assert _cli("undeploy", "gone", "-w", str(tmp_path)).returncode == 0
    wait_until(lambda: httpx.post(url, content=BODY, headers=CSV).status_code == 404)


def test_a_restarted_server_brings_its_endpoints_back(tmp_path: Path, models,
                                                      serve_app) -> None:
    Store.for_workspace(tmp_path).put_endpoint("kept", str(models["regression"]))
    first = serve_app(server_app(_settings(tmp_path)))
    assert httpx.post(f"{first.url}/endpoints/kept/invocations", content=BODY,
                      headers=CSV).status_code == 200
    first.__exit__()
    second = serve_app(server_app(_settings(tmp_path)))
    r = httpx.post(f"{second.url}/endpoints/kept/invocations", content=BODY, headers=CSV)
    assert r.status_code == 200
    assert len(r.text.split()) == len(ROWS)


def test_the_server_checks_its_token(tmp_path: Path, models, serve_app) -> None:
    Store.for_workspace(tmp_path).put_endpoint("t", str(models["binary"]))
    server = serve_app(server_app(_settings(tmp_path, token="tok")))
    url = f"{server.url}/endpoints/t/invocations"
    assert httpx.post(url, content=BODY, headers=CSV).status_code == 401
    assert httpx.post(url, content=BODY, headers={**CSV, "X-Tabpilot-Token": "bad"}
                      ).status_code == 401
    assert httpx.post(url, content=BODY, headers={**CSV, "X-Tabpilot-Token": "tok"}
                      ).status_code == 200


def test_binding_beyond_loopback_needs_a_token(tmp_path: Path) -> None:
    with pytest.raises(TabpilotError, match="token"):
        _settings(tmp_path, host="0.0.0.0").check()
    _settings(tmp_path, host="0.0.0.0", token="x").check()
    done = _cli("serve", "--host", "0.0.0.0", "-w", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and "token" in done.stderr


def test_data_capture_writes_sagemaker_shaped_json_lines(tmp_path: Path, models,
                                                         serve_app) -> None:
    Store.for_workspace(tmp_path).put_endpoint("cap", str(models["binary"]),
                                               capture_percent=100.0)
    server = serve_app(server_app(_settings(tmp_path)))
    for _ in range(3):
        r = httpx.post(f"{server.url}/endpoints/cap/invocations", content=BODY, headers=CSV)
        assert r.status_code == 200
    files = list((tmp_path / "capture" / "cap").rglob("*.jsonl"))
    records = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert len(records) == 3
    first = records[0]["captureData"]
    assert first["endpointInput"]["data"] == BODY
    assert first["endpointInput"]["encoding"] == "CSV"
    assert first["endpointOutput"]["data"].splitlines()[0].split(",")[0] in ("yes", "no")
    assert records[0]["eventMetadata"]["eventId"]


def test_capture_samples_a_share(tmp_path: Path, models, serve_app) -> None:
    Store.for_workspace(tmp_path).put_endpoint("none", str(models["binary"]),
                                               capture_percent=0.0)
    server = serve_app(server_app(_settings(tmp_path)))
    httpx.post(f"{server.url}/endpoints/none/invocations", content=BODY, headers=CSV)
    assert not (tmp_path / "capture").exists()
