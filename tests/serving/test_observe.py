"""Access log, Prometheus metrics and AWS-shaped errors on both servers, over real HTTP."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from servinglib import churn_table, free_port, wait_until

from tabpilot.api.app import install
from tabpilot.errors import TabpilotError
from tabpilot.serving.app import ServerSettings, model_app, server_app
from tabpilot.serving.observe import AccessFormatter, configure_access_log, plain_line
from tabpilot.store import Store

ROWS = churn_table(5, seed=3).drop(columns="label")
CSV = {"Content-Type": "text/csv", "Accept": "text/csv"}
BODY = ROWS.to_csv(index=False, header=False)
BAD_BODY = "1,2\n"  # two values where the model takes four: a 400


def _samples(server, headers: dict[str, str] | None = None) -> dict[tuple, float]:
    """/metrics parsed by Prometheus' own parser: {(sample name, sorted labels): value}."""
    r = httpx.get(f"{server.url}/metrics", headers=headers or {})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def _value(samples: dict[tuple, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _runtime_error(r: httpx.Response, status: int) -> str:
    """sagemaker-runtime's shape, as every other data-plane error: message + error type."""
    assert r.status_code == status, r.text
    assert r.headers["x-amzn-errortype"] == "ValidationError"
    body = r.json()
    assert "detail" not in body and body["message"] == body["error"]
    return body["message"]


def test_model_server_metrics_count_what_was_sent(models, serve_app) -> None:
    server = serve_app(model_app(models["binary"]))
    for _ in range(3):
        assert httpx.post(f"{server.url}/invocations", content=BODY, headers=CSV).status_code == 200
    assert httpx.post(f"{server.url}/invocations", content=BAD_BODY,
                      headers=CSV).status_code == 400
    assert httpx.get(f"{server.url}/no/such/path").status_code == 404
    assert httpx.get(f"{server.url}/invocations").status_code == 405
    assert httpx.request("PROPFIND", f"{server.url}/ping").status_code == 405

    s = _samples(server)
    invocations = dict(route="/invocations", method="POST", model="bin-a", operation="")
    assert _value(s, "tabpilot_http_requests_total", **invocations, status="200") == 3
    assert _value(s, "tabpilot_http_requests_total", **invocations, status="400") == 1
    assert _value(s, "tabpilot_http_errors_total", **invocations, error="ValidationError") == 1
    assert _value(s, "tabpilot_http_request_duration_seconds_count", **invocations) == 4
    assert _value(s, "tabpilot_http_request_duration_seconds_sum", **invocations) > 0
    assert _value(s, "tabpilot_http_request_duration_seconds_bucket", **invocations,
                  le="+Inf") == 4
    # a path no route answers is one bounded series, never its raw path
    assert _value(s, "tabpilot_http_requests_total", route="unmatched", method="GET",
                  model="", operation="", status="404") == 1
    assert _value(s, "tabpilot_http_requests_total", route="/invocations", method="GET",
                  model="", operation="", status="405") == 1
    # methods beyond the common ones (WebDAV's, ...) share one series, "other"
    assert _value(s, "tabpilot_http_requests_total", route="/ping", method="other",
                  model="", operation="", status="405") == 1
    assert not any("/no/such/path" in str(key) or "PROPFIND" in str(key) for key in s)
    errors = sum(v for (name, _), v in s.items() if name == "tabpilot_http_errors_total")
    assert errors == 4  # the 400, the 404, the two 405s
    # the scrape counts itself on the next one
    again = _samples(server)
    assert _value(again, "tabpilot_http_requests_total", route="/metrics", method="GET",
                  model="", operation="", status="200") == 1


def test_unknown_path_and_wrong_method_are_aws_shaped(models, serve_app) -> None:
    server = serve_app(model_app(models["binary"]))
    message = _runtime_error(httpx.get(f"{server.url}/nope"), 404)
    assert "GET /nope" in message and "POST /invocations" in message  # what it does answer
    r = httpx.put(f"{server.url}/ping")
    assert "PUT" in _runtime_error(r, 405) and r.headers["allow"] == "GET"


def test_workspace_server_errors_jobs_and_endpoints(tmp_path: Path, models, serve_app) -> None:
    store = Store.for_workspace(tmp_path)
    for name, status in (("done-1", "Completed"), ("done-2", "Completed"), ("bad", "Failed")):
        store.create_job(name=name, status=status, secondary_status=status, target="label",
                         input_uri="t.csv", request={}, job_dir=str(tmp_path / "jobs" / name))
    store.put_endpoint("churn", str(models["binary"]))
    app = server_app(ServerSettings(workspace=tmp_path, poll_seconds=0.2))
    install(app, tmp_path)  # the control plane, as `tabpilot serve` has it
    server = serve_app(app)

    r = httpx.get(f"{server.url}/")  # the control plane's path: the SageMaker API's shape
    assert r.status_code == 405 and r.json()["__type"] == "UnknownOperationException"
    assert r.headers["x-amzn-errortype"] == "UnknownOperationException"
    _runtime_error(httpx.get(f"{server.url}/endpoints/churn/nothing"), 404)
    ok = httpx.post(f"{server.url}/endpoints/churn/invocations", content=BODY, headers=CSV)
    assert ok.status_code == 200, ok.text
    missing = httpx.post(f"{server.url}/endpoints/made-up/invocations", content=BODY,
                         headers=CSV)
    assert missing.status_code == 404
    listed = httpx.post(f"{server.url}/", content="{}", headers={
        "X-Amz-Target": "SageMaker.ListAutoMLJobs", "Content-Type": "application/x-amz-json-1.1"})
    assert listed.status_code == 200, listed.text

    s = _samples(server)
    assert _value(s, "tabpilot_jobs", status="Completed") == 2
    assert _value(s, "tabpilot_jobs", status="Failed") == 1
    assert _value(s, "tabpilot_jobs", status="InProgress") == 0
    assert _value(s, "tabpilot_endpoints", state="loaded") == 1
    route = "/endpoints/{name}/invocations"
    assert _value(s, "tabpilot_http_requests_total", route=route, method="POST", model="churn",
                  operation="", status="200") == 1
    # a name that is not deployed gets no series of its own
    assert _value(s, "tabpilot_http_requests_total", route=route, method="POST", model="",
                  operation="", status="404") == 1
    assert not any("made-up" in str(key) for key in s)
    assert _value(s, "tabpilot_http_requests_total", route="/", method="POST", model="",
                  operation="ListAutoMLJobs", status="200") == 1
    assert _value(s, "tabpilot_http_errors_total", route="/", method="GET", model="",
                  operation="", error="UnknownOperationException") == 1


def test_metrics_need_the_token_like_every_route(models, serve_app) -> None:
    server = serve_app(model_app(models["binary"], token="s3cret"))
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    assert httpx.get(f"{server.url}/ping").status_code == 200  # health checks stay open
    s = _samples(server, {"Authorization": "Bearer s3cret"})
    assert _value(s, "tabpilot_http_requests_total", route="unmatched", method="GET",
                  model="", operation="", status="401") == 1  # the guard's refusal counted


def test_access_log_lines_plain_and_json(models, serve_app, caplog) -> None:
    server = serve_app(model_app(models["binary"], token="s3cret"))
    with caplog.at_level(logging.INFO, logger="tabpilot.access"):
        r = httpx.post(f"{server.url}/invocations?output_keys=predicted_label", content=BODY,
                       headers={**CSV, "Authorization": "Bearer s3cret"})
        assert r.status_code == 200
        assert httpx.get(f"{server.url}/missing",
                         headers={"Authorization": "Bearer s3cret"}).status_code == 404
    records = [rec for rec in caplog.records if rec.name == "tabpilot.access"]
    assert len(records) == 2
    entry = records[0].access
    assert (entry["method"], entry["path"], entry["route"], entry["status"]) == \
        ("POST", "/invocations", "/invocations", 200)
    assert entry["model"] == "bin-a" and entry["client"].startswith("127.0.0.1:")
    assert entry["bytes_in"] == len(BODY) and entry["bytes_out"] == len(r.content)
    assert entry["duration_ms"] > 0 and entry["error"] is None
    assert records[1].access["status"] == 404 and records[1].access["error"] == "ValidationError"

    plain = AccessFormatter("plain").format(records[0])
    assert plain.endswith(plain_line(entry))
    assert " POST /invocations 200 " in plain and "model=bin-a" in plain
    line = AccessFormatter("json").format(records[0])
    assert "\n" not in line and json.loads(line) == entry
    for text in (plain, line, AccessFormatter("json").format(records[1])):
        # never the body, the query string or the token
        assert "s3cret" not in text and "output_keys" not in text
        assert ROWS["customer_id"].iloc[0] not in text


def test_serve_model_cli_logs_json_lines(models, tmp_path: Path) -> None:
    port = free_port()
    err = tmp_path / "stderr.txt"
    with err.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "tabpilot.cli", "serve-model",
                                 str(models["binary"]), "--port", str(port),
                                 "--log-format", "json"],
                                stdout=subprocess.DEVNULL, stderr=stderr,
                                env={**os.environ, "COLUMNS": "200"})
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return httpx.get(f"{url}/ping").status_code == 200
            except httpx.TransportError:
                assert proc.poll() is None, err.read_text()
                return False

        wait_until(up, what="serve-model to start")
        assert httpx.post(f"{url}/invocations", content=BODY, headers=CSV).status_code == 200
        assert httpx.delete(f"{url}/invocations").status_code == 405

        def logged() -> list[dict]:
            return [json.loads(x) for x in err.read_text().splitlines() if x.startswith("{")]

        wait_until(lambda: len(logged()) >= 3, what="three access-log lines")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lines = logged()
    assert [(x["method"], x["status"]) for x in lines[:3]] == \
        [("GET", 200), ("POST", 200), ("DELETE", 405)]
    assert lines[1]["model"] == "bin-a" and lines[1]["route"] == "/invocations"


def test_unknown_log_format_is_refused() -> None:
    before = list(logging.getLogger("tabpilot.access").handlers)
    with pytest.raises(TabpilotError, match="unknown log format 'xml'; use one of: plain, json"):
        configure_access_log("xml")
    assert logging.getLogger("tabpilot.access").handlers == before  # nothing changed


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_formatter_passes_other_records_through(fmt: str) -> None:
    record = logging.LogRecord("tabpilot.access", logging.INFO, __file__, 1, "hello", (), None)
    assert AccessFormatter(fmt).format(record) == "hello"
