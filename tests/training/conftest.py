"""A real `tabpilot serve` app (endpoints and the SageMaker API) on a loopback port, with
an S3 root holding label-first CSV channels and a trusted model root, shared per module."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from traininglib import KEY_ID, SECRET, Served, ThreadServer, binary_table, write_csv  # noqa: E402

from tabpilot.api.app import install  # noqa: E402
from tabpilot.serving.app import ServerSettings, server_app  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("training")
    root, workspace, trusted = tmp / "s3", tmp / "workspace", tmp / "trusted"
    trusted.mkdir()
    write_csv(root / "bucket" / "train" / "part-0.csv", binary_table(300, 0))
    write_csv(root / "bucket" / "validation" / "part-0.csv", binary_table(120, 1))
    (root / "bucket" / "empty").mkdir(parents=True)
    (root / "bucket" / "empty" / "nothing.csv").write_text("")
    settings = ServerSettings(workspace=workspace, poll_seconds=0.2)
    app = server_app(settings)
    install(app, workspace, root, {KEY_ID: SECRET}, trust_model_roots=[str(trusted)])
    server = ThreadServer(app).__enter__()
    yield Served(server, root, workspace, trusted)
    server.__exit__()
