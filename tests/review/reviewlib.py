"""Helpers for the review tests: a real `tabpilot serve` process, boto3 clients for it, and
a reviewer's browser session (httpx with a cookie jar, reading the forms it is given)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from html import unescape
from pathlib import Path

import httpx

os.environ["TABPILOT_API_STRICT"] = "1"  # a response the service model rejects fails the test
sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))  # servinglib: real models
from servinglib import free_port  # noqa: E402

KEY_ID, SECRET, TOKEN = "AKIDREVIEWTEST", "review-test-secret", "server-token-123"
ROLE = "arn:aws:iam::123456789012:role/a2i"
WORKTEAM = "arn:aws:sagemaker:local:000000000000:workteam/private-crowd/reviewers"


class Server:
    """`tabpilot serve` in its own process, with a token and AWS credentials, so that
    nothing is open: every route but /ping and /review/ needs one of them."""

    def __init__(self, workspace: Path, s3_root: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workspace.parent / "server.log"
        env = {**os.environ, "TABPILOT_API_STRICT": "1"}
        env.pop("TABPILOT_WORKSPACE", None)
        with open(self.log, "wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tabpilot.cli", "serve", "--port", str(self.port),
                 "--workspace", str(workspace), "--s3-root", str(s3_root), "--token", TOKEN,
                 "--aws-access-key-id", KEY_ID, "--aws-secret-access-key", SECRET],
                stdout=sink, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{self.url}/ping", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def client(self, service: str):
        import boto3
        from botocore.config import Config

        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
                            config=Config(retries={"max_attempts": 1}))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class ThreadedServer(Server):
    """The same app `tabpilot serve` builds (server_app + the API), on uvicorn in a thread."""

    def __init__(self, workspace: Path, s3_root: Path) -> None:
        from servinglib import ThreadServer

        from tabpilot.api.app import install
        from tabpilot.serving.app import ServerSettings, server_app

        settings = ServerSettings(workspace=workspace, token=TOKEN,
                                  credentials={KEY_ID: SECRET})
        app = server_app(settings)
        install(app, workspace, s3_root, {KEY_ID: SECRET}, TOKEN)
        self.app = app
        self.thread = ThreadServer(app).__enter__()
        self.url = self.thread.url

    def stop(self) -> None:
        self.thread.__exit__()


class Reviewer:
    """A reviewer's browser: signs in through the form and answers through the form,
    sending back the CSRF token each page carries and the cookies the server set."""

    def __init__(self, url: str, name: str, token: str) -> None:
        self.name, self.token = name, token
        self.http = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
        self.last: httpx.Response | None = None

    def sign_in(self) -> httpx.Response:
        form = self.http.get("/review/login")
        response = self.http.post("/review/login", data={
            "csrf": field(form.text, "csrf"), "reviewer": self.name, "token": self.token})
        return response

    def task(self) -> str:
        """The review page's HTML (a lease is taken on the task it shows)."""
        self.last = self.http.get("/review/")
        assert self.last.status_code == 200, self.last.text
        return self.last.text

    def answer(self, label: str, loop: str | None = None) -> httpx.Response:
        page = self.last.text if self.last is not None else self.task()
        return self.http.post("/review/answer", data={
            "csrf": field(page, "csrf"), "loop": loop or field(page, "loop"), "label": label})


def field(html: str, name: str) -> str:
    """The value of a hidden input in a page."""
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} field in the page: {html[:500]}"
    return unescape(match.group(1))


def make_flow(store, name: str, output: Path, task_count: int = 2, task_seconds: int = 60,
              lifetime_seconds: int = 864000) -> None:
    """A flow definition as CreateFlowDefinition stores one (for tests without a server)."""
    from tabpilot.review.flows import FLOW, UI, arn, flow_spec

    request = {"FlowDefinitionName": name, "RoleArn": ROLE,
               "OutputConfig": {"S3OutputPath": str(output)},
               "HumanLoopConfig": {"WorkteamArn": WORKTEAM, "HumanTaskUiArn": arn(UI, "ui"),
                                   "TaskTitle": "Churn?", "TaskDescription": "Pick the label",
                                   "TaskCount": task_count,
                                   "TaskTimeLimitInSeconds": task_seconds,
                                   "TaskAvailabilityLifetimeInSeconds": lifetime_seconds}}
    store.add_resource(FLOW, name, flow_spec(request, str(output)), "Active")
