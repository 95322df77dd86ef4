"""The store's contract suite runs on every implementation: each test that takes `store`
runs on the workspace's SQLite file and (marked `cluster`, so `make test` skips it and
`make test-cluster` runs it) on a fresh database of a real PostgreSQL server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tabpilot.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from pgcluster import postgres, postgres_url  # noqa: E402,F401  (fixtures)
from seaweed import s3_env, s3_prefix, seaweed  # noqa: E402,F401  (fixtures)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.cluster)])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """None: the workspace's own SQLite file; else a fresh PostgreSQL database."""
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_url")


@pytest.fixture
def store(tmp_path: Path, store_url: str | None) -> Iterator[Store]:
    opened = Store.for_workspace(tmp_path / "ws", url=store_url)
    yield opened
    opened.engine.dispose()
