"""The module's server: endpoints and the SageMaker API, checking signatures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apilib import KEY_ID, SECRET, Api, start_api


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    server, root, workspace = start_api(tmp_path_factory.mktemp("api"), {KEY_ID: SECRET})
    yield Api(server, root, workspace)
    server.__exit__()
