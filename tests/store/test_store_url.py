"""Which store a process opens: `url=` in code, else $TABPILOT_STORE (which the CLI's
`--store` sets for itself and the processes it starts), else the workspace's tabpilot.db."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tabpilot.errors import ConfigError, StoreUnavailableError
from tabpilot.settings import STORE_ENV, Backends, normalize_store_url
from tabpilot.store import Store


def test_the_default_is_the_workspace_sqlite_file(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STORE_ENV, raising=False)
    store = Store.for_workspace(tmp_path / "ws")
    assert store.url == f"sqlite:///{(tmp_path / 'ws' / 'tabpilot.db').resolve()}"
    assert not Backends.resolve().shared_store


def test_the_environment_then_the_argument_choose_the_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = f"sqlite:///{tmp_path / 'shared.db'}"
    monkeypatch.setenv(STORE_ENV, elsewhere)
    store = Store.for_workspace(tmp_path / "ws")
    assert store.url == elsewhere and store.root == (tmp_path / "ws").resolve()
    assert not (tmp_path / "ws" / "tabpilot.db").exists()
    given = f"sqlite:///{tmp_path / 'given.db'}"
    assert Store.for_workspace(tmp_path / "ws", url=given).url == given


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://u@h:5432/d", "postgresql+psycopg://u@h:5432/d"),
    ("postgres://u@h/d", "postgresql+psycopg://u@h/d"),
    ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
    ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
])
def test_postgresql_urls_mean_the_psycopg_driver(url: str, expected: str) -> None:
    assert normalize_store_url(url) == expected


@pytest.mark.parametrize("url", ["mysql://u@h/d", "tabpilot.db", "postgresql+psycopg2://u@h/d"])
def test_an_unsupported_store_url_is_one_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="TABPILOT_STORE"):
        normalize_store_url(url)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_is_one_line_naming_the_store_without_its_password(
        tmp_path: Path) -> None:
    url = f"postgresql+psycopg://me:secret@127.0.0.1:{_closed_port()}/db"
    with pytest.raises(StoreUnavailableError) as caught:
        Store.for_workspace(tmp_path, url=url)
    message = str(caught.value)
    assert "cannot open the store postgresql+psycopg://me:***@127.0.0.1" in message
    assert "secret" not in message and "\n" not in message


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tabpilot", *args], capture_output=True,
                          text=True, cwd=cwd, env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})


def test_the_cli_store_option_reaches_the_commands(tmp_path: Path) -> None:
    shared = tmp_path / "shared.db"
    store = Store.for_workspace(tmp_path / "ws", url=f"sqlite:///{shared}")
    store.create_job(name="seen-1", status="Completed", secondary_status="Completed",
                     target="y", input_uri="/t.csv", request={"target": "y"},
                     job_dir=str(tmp_path / "ws" / "seen-1"))
    done = _cli("--store", f"sqlite:///{shared}", "list", "--workspace", "ws", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "seen-1" in done.stdout
    bad = _cli("--store", "mysql://u@h/d", "list", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error: store URL scheme 'mysql'")
    assert len(bad.stderr.strip().splitlines()) == 1
