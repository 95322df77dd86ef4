"""A real MLflow tracking server (started from its own venv, see the Makefile's
`mlflow-server`) and the CLI called in this process."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tabpilot.serving.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SERVER_ENV = "TABPILOT_TEST_MLFLOW"  # the `mlflow` executable of a server venv
SERVER_START_SECONDS = 90


def _server_executable() -> Path | None:
    given = os.environ.get(SERVER_ENV)
    path = Path(given) if given else ROOT / ".venv-mlflow" / "bin" / "mlflow"
    return path if path.is_file() else None


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` on a free loopback port, a temporary SQLite store and artifact
    folder; its URI. Stopped (its whole process group) after the session."""
    executable = _server_executable()
    if executable is None:
        pytest.skip(f"no MLflow server: run `make mlflow-server` (or set {SERVER_ENV} to an "
                    "`mlflow` executable)")
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [str(executable), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        # without its job runner (a pool of huey consumers the tests never use): starts
        # and stops in seconds
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
             "MLFLOW_DISABLE_TELEMETRY": "true"})
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("mlflow server did not start:\n"
                                       + (root / "server.log").read_text()[-3000:]) from None
                time.sleep(0.3)
        yield uri
    finally:
        _stop(process)
        log.close()


def _stop(process: subprocess.Popen) -> None:
    """The server's process group: asked to stop, then killed after a few seconds (its
    database is a temporary file; nothing to shut down cleanly)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)  # children left behind by the group leader
    except ProcessLookupError:
        pass
    process.wait()

