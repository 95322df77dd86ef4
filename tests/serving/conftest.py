from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servinglib import ThreadServer, build_model

from tabpilot.tasks import ProblemType


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "binary": build_model(root / "bin-a" / "model"),
        "binary_b": build_model(root / "bin-b" / "model", seed=1, inverted=True),
        "regression": build_model(root / "reg" / "model", ProblemType.REGRESSION),
    }


@pytest.fixture
def serve_app() -> Iterator:
    servers: list[ThreadServer] = []

    def start(app) -> ThreadServer:
        server = ThreadServer(app).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()
