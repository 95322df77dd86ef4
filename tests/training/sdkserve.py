"""The SageMaker Python SDK v2 (and v3) against a real `tabpilot serve` process, for the tests
that run AWS's own SDK code: the SDK lives in a venv of its own (`make sagemaker-sdk`, it pins
packages older than tabpilot's; v3's: `make sagemaker-sdk3`, `sdk_python(3)`), the server in
a process of its own, and the only change from AWS is the AWS_ENDPOINT_URL_* variables. A
script prints one `RESULT {json}` line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from tabpilot.serving.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SDK_ENV = "TABPILOT_TEST_SAGEMAKER_PYTHON"  # a python with sagemaker 2.x installed
SDK3_ENV = "TABPILOT_TEST_SAGEMAKER3_PYTHON"  # a python with sagemaker 3.x installed
KEY_ID, SECRET = "AKIDSDKTEST", "sdk-test-secret"
CONFIG = """SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
"""
# the services the SDK reaches: SageMaker, its runtime, STS (the account), Experiments' metrics
SERVICES = ("SAGEMAKER", "SAGEMAKER_RUNTIME", "STS", "SAGEMAKER_METRICS")


def sdk_python(version: int = 2) -> Path:
    """The python of the SDK's venv: v2's (`make sagemaker-sdk`) or v3's (`make
    sagemaker-sdk3`), or the one its variable names."""
    env, venv, target, pin = ((SDK_ENV, ".venv-sagemaker", "sagemaker-sdk", ">=2.230,<3")
                              if version == 2 else
                              (SDK3_ENV, ".venv-sagemaker3", "sagemaker-sdk3", ">=3,<4"))
    given = os.environ.get(env)
    path = Path(given) if given else ROOT / venv / "bin" / "python"
    if not path.is_file():
        pytest.fail(f"no SageMaker Python SDK venv at {path}: run `make {target}` (or set "
                    f"{env} to a python with sagemaker{pin})")
    return path


def wait_up(port: int, server: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    until = time.time() + seconds
    while time.time() < until:
        if server.poll() is not None:
            raise AssertionError(f"tabpilot serve exited: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2).read()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"tabpilot serve did not answer /ping: {log.read_text()[-2000:]}")


def without_aws() -> dict[str, str]:
    """This process's environment less every AWS_* variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


@contextmanager
def serving(folder: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`tabpilot serve ARGS` on a free loopback port with its workspace and log in
    `folder`: its URL, until the block ends (then the server is stopped)."""
    port = free_port()
    log = folder / "serve.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "tabpilot", "serve", "--port", str(port),
         "-w", str(folder / "workspace"), *args],
        stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_up(port, server, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def serving_s3_folder(folder: Path, s3: Path) -> AbstractContextManager[str]:
    """`serving` with `s3` as the server's S3 (a folder: s3://bucket/key is s3/bucket/key)
    and the test's access key."""
    return serving(folder, "--s3-root", str(s3), "--aws-access-key-id", KEY_ID,
                   "--aws-secret-access-key", SECRET)


def run_sdk(script: str, url: str, folder: Path, *args: str, timeout: float = 420,
            config: str = CONFIG, env: dict[str, str] | None = None,
            python: Path | None = None) -> dict:
    """`script` in the SDK's python (`python`, else v2's: `sdk_python()`) with every SDK
    service at `url` (`env`: the AWS settings, else the test's key); its RESULT line, read
    as JSON."""
    (folder / "config.yaml").write_text(config)
    settings = {**without_aws(), **(env or {"AWS_ACCESS_KEY_ID": KEY_ID,
                                           "AWS_SECRET_ACCESS_KEY": SECRET})}
    settings.update({f"AWS_ENDPOINT_URL_{service}": url for service in SERVICES})
    settings.update(AWS_DEFAULT_REGION="us-east-1", SAGEMAKER_SUPPRESS_V2_WARNING="1",
                    SAGEMAKER_USER_CONFIG_OVERRIDE=str(folder / "config.yaml"))
    done = subprocess.run([str(python or sdk_python()), "-c", script, *args], env=settings,
                          capture_output=True, text=True, timeout=timeout, cwd=folder)
    log = folder / "serve.log"
    assert done.returncode == 0, done.stderr[-3000:] + (
        log.read_text()[-2000:] if log.exists() else "")
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(line.removeprefix("RESULT "))
