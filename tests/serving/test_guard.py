"""The guard in front of every route, over real HTTP: foreign Host and Origin headers are
refused on loopback, and with a token or AWS credentials configured no route but /ping
answers without one of them (the bearer check is never skipped)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tabpilot.errors import TabpilotError
from tabpilot.serving.app import ServerSettings, server_app
from tabpilot.store import Store

KEY_ID, SECRET = "AKIDGUARDTEST", "guard-secret"
ROW = "tenure,plan,charges\n12,basic,70.5\n"
CONTROL = {"X-Amz-Target": "SageMaker.ListEndpoints",
           "Content-Type": "application/x-amz-json-1.1"}


def _server(tmp_path: Path, models, serve_app, **settings):
    from tabpilot.api.app import install

    workspace = tmp_path / "ws"
    Store.for_workspace(workspace).put_endpoint("churn", str(models["binary"]))
    config = ServerSettings(workspace=workspace, poll_seconds=0.2, **settings)
    app = server_app(config)
    install(app, workspace, None, dict(settings.get("credentials", {})), settings.get("token"))
    return serve_app(app)


def _invoke(url: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/endpoints/churn/invocations", content=ROW,
                      headers={"Content-Type": "text/csv; header=present", **headers}, timeout=30)


def test_foreign_host_and_origin_are_refused_on_loopback(tmp_path, models, serve_app) -> None:
    server = _server(tmp_path, models, serve_app)
    assert _invoke(server.url).status_code == 200
    port = server.url.rsplit(":", 1)[1]
    assert _invoke(server.url, Host=f"localhost:{port}").status_code == 200
    rebound = _invoke(server.url, Host="attacker.example:80")  # DNS rebinding
    assert rebound.status_code == 403 and "Host" in rebound.json()["message"]
    for origin in ("http://attacker.example", "null", f"http://localhost:{int(port) + 1}"):
        refused = _invoke(server.url, Origin=origin)
        assert refused.status_code == 403, origin
    assert _invoke(server.url, Origin=server.url).status_code == 200  # the server's own page
    assert _invoke(server.url, **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
    # the control plane answers a refused request in AWS's error shape
    control = httpx.post(server.url + "/", content="{}", timeout=30,
                         headers={**CONTROL, "Origin": "http://attacker.example"})
    assert control.status_code == 403
    assert control.json()["__type"] == "AccessDeniedException"
    assert httpx.post(server.url + "/", content="{}", headers=CONTROL, timeout=30).status_code == 200
    assert httpx.get(server.url + "/ping", headers={"Host": "x"}, timeout=30).status_code == 200


def test_allowed_hosts_and_origins_are_accepted(tmp_path, models, serve_app) -> None:
    server = _server(tmp_path, models, serve_app, allowed_hosts=["tabpilot.internal"],
                     allowed_origins=["https://studio.internal"])
    assert _invoke(server.url, Host="tabpilot.internal").status_code == 200
    assert _invoke(server.url, Origin="https://studio.internal").status_code == 200
    assert _invoke(server.url, Host="other.internal").status_code == 403


def test_with_credentials_every_route_needs_a_signature(tmp_path, models, serve_app) -> None:
    """The bearer check used to be skipped when AWS credentials were set: /invocations and
    /endpoints were open even off loopback."""
    server = _server(tmp_path, models, serve_app, credentials={KEY_ID: SECRET})
    for response in (_invoke(server.url), httpx.get(server.url + "/endpoints", timeout=30),
                     httpx.post(server.url + "/", content="{}", headers=CONTROL, timeout=30)):
        assert response.status_code == 403, response.text
        assert response.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    forged = _invoke(server.url, Authorization="AWS4-HMAC-SHA256 Credential=AKIDGUARDTEST/"
                     "20260101/us-east-1/sagemaker/aws4_request, SignedHeaders=host, "
                     "Signature=" + "0" * 64, **{"X-Amz-Date": "20260101T000000Z"})
    assert forged.status_code == 403
    import boto3

    runtime = boto3.client("sagemaker-runtime", endpoint_url=server.url, region_name="us-east-1",
                           aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
    answer = runtime.invoke_endpoint(EndpointName="churn", ContentType="text/csv",
                                     Body=ROW.split("\n", 1)[1])
    assert answer["Body"].read().split(b",")[0] in (b"yes", b"no")
    wrong = boto3.client("sagemaker-runtime", endpoint_url=server.url, region_name="us-east-1",
                         aws_access_key_id=KEY_ID, aws_secret_access_key="not-the-secret")
    with pytest.raises(Exception, match="signature"):
        wrong.invoke_endpoint(EndpointName="churn", ContentType="text/csv", Body="12,basic,70.5")


def test_token_and_credentials_together(tmp_path, models, serve_app) -> None:
    server = _server(tmp_path, models, serve_app, token="tok", credentials={KEY_ID: SECRET})
    assert _invoke(server.url).status_code == 401
    assert _invoke(server.url, Authorization="Bearer wrong").status_code == 401
    assert _invoke(server.url, Authorization="Bearer tok").status_code == 200
    assert _invoke(server.url, **{"X-Tabpilot-Token": "tok"}).status_code == 200
    listed = httpx.post(server.url + "/", content=json.dumps({}), timeout=30,
                        headers={**CONTROL, "Authorization": "Bearer tok"})
    assert listed.status_code == 200 and "Endpoints" in listed.json()


def test_signed_requests_need_credentials_when_a_token_is_set(tmp_path, models,
                                                              serve_app) -> None:
    server = _server(tmp_path, models, serve_app, token="tok")
    signed = _invoke(server.url, Authorization="AWS4-HMAC-SHA256 Credential=x/y, "
                     "SignedHeaders=host, Signature=0")
    assert signed.status_code == 403
    assert signed.headers["x-amzn-errortype"] == "UnrecognizedClientException"


@pytest.mark.parametrize("settings,ok", [
    ({"host": "0.0.0.0"}, False),
    ({"host": "0.0.0.0", "token": "t"}, True),
    ({"host": "0.0.0.0", "credentials": {KEY_ID: SECRET}}, True),
    ({"host": "127.0.0.1"}, True),
])
def test_binding_off_loopback_needs_a_token_or_credentials(settings: dict, ok: bool) -> None:
    config = ServerSettings(**settings)
    if ok:
        config.check()
    else:
        with pytest.raises(TabpilotError, match="token"):
            config.check()
    assert config.policy().loopback is (settings["host"] == "127.0.0.1")
