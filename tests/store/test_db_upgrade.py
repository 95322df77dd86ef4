"""`tabpilot db upgrade` on each store: an empty database gets the schema, a second run
finds it up to date, and an unreachable server is one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tabpilot.settings import STORE_ENV
from tabpilot.store import migrations


def test_db_upgrade_brings_the_schema_then_finds_it_current(
        cli, tmp_path: Path, store_url: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STORE_ENV, "")  # the CLI sets it for its children: undone after
    store = ["--store", store_url] if store_url else []
    first = cli(*store, "db", "upgrade", workspace=tmp_path / "ws")
    assert first.returncode == 0, first.stderr
    assert f"schema upgraded from none to {migrations.HEAD}" in first.stdout
    again = cli(*store, "db", "upgrade", workspace=tmp_path / "ws")
    assert again.returncode == 0 and f"schema {migrations.HEAD}, up to date" in again.stdout


def test_db_upgrade_on_an_unreachable_server_is_one_line(
        cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    monkeypatch.setenv(STORE_ENV, "")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = cli("--store", f"postgresql+psycopg://nobody@127.0.0.1:{port}/none", "db",
               "upgrade", workspace=tmp_path / "ws")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot open the store" in lines[0]
