"""A real `tabpilot serve` app (endpoints, the SageMaker API, the metrics service) on a
loopback port checking signatures, with label-first CSV channels for a training job,
shared by the tests of this folder (their names never collide)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "training"))
from traininglib import KEY_ID, SECRET, Served, ThreadServer, binary_table, write_csv  # noqa: E402

from tabpilot.api.app import install  # noqa: E402
from tabpilot.serving.app import ServerSettings, server_app  # noqa: E402


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("experiments")
    root, workspace = tmp / "s3", tmp / "workspace"
    write_csv(root / "bucket" / "train" / "part-0.csv", binary_table(200, 0))
    write_csv(root / "bucket" / "validation" / "part-0.csv", binary_table(80, 1))
    app = server_app(ServerSettings(workspace=workspace, poll_seconds=0.2))
    install(app, workspace, root, {KEY_ID: SECRET})
    server = ThreadServer(app).__enter__()
    yield Served(server, root, workspace, tmp)
    server.__exit__()


@pytest.fixture(scope="session")
def sm(served: Served):
    return served.client()


@pytest.fixture(scope="session")
def metrics(served: Served):
    return served.client("sagemaker-metrics")
