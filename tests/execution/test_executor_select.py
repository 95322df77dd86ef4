"""Choosing the executor: names, precedence (argument > $TABPILOT_EXECUTOR > local), `auto`,
and the one-line refusals (a bad name, Ray missing, a Ray cluster that is not there)."""

from __future__ import annotations

import importlib.util
import logging
import socket
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.errors import ConfigError
from tabpilot.execution import LocalProcessExecutor
from tabpilot.execution.select import make_executor, resolve_name
from tabpilot.settings import EXECUTOR_ENV, Backends, normalize_executor


@pytest.fixture(autouse=True)
def _no_executor_settings(monkeypatch):
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


@pytest.fixture
def table(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": rng.normal(size=60), "y": rng.choice(["a", "b"], 60)}).to_csv(path,
                                                                                   index=False)
    return path


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens


@pytest.mark.parametrize(("given", "meant"), [
    ("local", "local"), (" Ray ", "ray"), ("AUTO", "auto"),
    ("ray://10.0.0.5:10001", "ray://10.0.0.5:10001"), ("ray://head:10001/", "ray://head:10001"),
])
def test_executor_names_are_normalised(given: str, meant: str) -> None:
    assert normalize_executor(given) == meant


@pytest.mark.parametrize("given", ["spark", "ray://head", "ray://:10001", "ray://h:0",
                                   "ray://h:70000", "http://h:10001", "ray:/h:1"])
def test_a_bad_executor_name_is_one_line_naming_the_choices(given: str) -> None:
    with pytest.raises(ConfigError) as caught:
        normalize_executor(given)
    message = str(caught.value)
    assert "\n" not in message
    assert "local, ray, ray://HOST:PORT, auto" in message and "$TABPILOT_EXECUTOR" in message


def test_the_argument_wins_over_the_environment_which_wins_over_local(monkeypatch) -> None:
    assert Backends.resolve().executor == "local"
    monkeypatch.setenv(EXECUTOR_ENV, "ray://head:10001")
    assert Backends.resolve().executor == "ray://head:10001"
    assert Backends.resolve(executor="local").executor == "local"


def test_auto_is_local_outside_a_ray_cluster_and_ray_inside_one(monkeypatch) -> None:
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():  # pragma: no cover - a Ray test ran before
        pytest.skip("this process is connected to Ray")
    assert resolve_name("auto") == "local"
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    # inside a cluster: Ray when its extra is installed, else this machine, with a warning
    expected = "ray" if importlib.util.find_spec("ray") is not None else "local"
    assert resolve_name("auto") == expected


def test_auto_inside_a_cluster_without_ray_installed_runs_here_and_says_why(
        monkeypatch, caplog) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    monkeypatch.setitem(sys.modules, "ray", None)  # what an import of a missing package does
    with caplog.at_level(logging.WARNING, logger="tabpilot.execution.select"):
        assert resolve_name("auto") == "local"
    assert "pip install 'tabpilot[ray]'" in caplog.text


def test_the_local_executor_is_the_default_and_takes_the_workers_asked() -> None:
    default = make_executor(None, None, local_workers=3)
    assert isinstance(default, LocalProcessExecutor) and default.n_workers == 3
    assert make_executor("local", 2, local_workers=3).n_workers == 2
    given = LocalProcessExecutor(1)
    assert make_executor(given, None, 3) is given


def test_automl_refuses_a_bad_executor_name_when_built() -> None:
    from tabpilot import AutoML

    with pytest.raises(ConfigError, match="is not one of local, ray"):
        AutoML("y", executor="dask")


def test_cli_bad_executor_name_is_one_line_exit_2(cli, table: Path, tmp_path: Path) -> None:
    done = cli("--executor", "spark", "run", str(table), "--target", "y",
               workspace=tmp_path / "ws")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "executor 'spark' is not one of" in lines[0]


def test_cli_unreachable_ray_cluster_is_one_line_exit_2_at_once(
        cli, table: Path, tmp_path: Path, monkeypatch) -> None:
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    address = f"ray://127.0.0.1:{_closed_port()}"
    # refused by the TCP check, before Ray's own connect (which retries for minutes)
    inits: list[object] = []
    monkeypatch.setattr(ray, "init", lambda *a, **k: inits.append((a, k)))
    done = cli("--executor", address, "run", str(table), "--target", "y", "--time-limit", "30",
               workspace=tmp_path / "ws")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"cannot reach the Ray cluster at {address}" in lines[0]
    assert "ray start --head" in lines[0]
    assert inits == []  # refused at once, never handed to Ray's retrying connect
    assert not (tmp_path / "ws" / "jobs").exists()  # nothing was started


def test_cli_without_ray_installed_names_the_extra_to_install(
        cli, table: Path, tmp_path: Path, monkeypatch) -> None:
    """Ray made unimportable (as on a machine without the extra): `import ray` fails."""
    monkeypatch.setitem(sys.modules, "ray", None)
    done = cli("--executor", "ray", "run", str(table), "--target", "y",
               workspace=tmp_path / "ws")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "pip install 'tabpilot[ray]'" in lines[0]
    assert not (tmp_path / "ws" / "jobs").exists()
