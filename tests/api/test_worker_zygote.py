"""The training workers' warm parent (api/zygote.py): a worker forked from it runs
`api/worker.py` with the caller's environment and log, is reaped without the caller
waiting on it, and a zygote that is gone or turned off never stops a worker from
starting."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

from tabpilot.api import zygote as zy
from tabpilot.api.zygote import Zygote


def gone(pid: int, seconds: float = 60) -> bool:
    """Whether the process ends and is reaped (no zombie left) within `seconds`."""
    end = time.time() + seconds
    while time.time() < end:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                time.sleep(0.05)
                continue
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def zygote():
    z = Zygote()
    yield z
    z.close()


def test_a_forked_worker_runs_the_worker_with_the_callers_env_and_log(tmp_path, zygote):
    log = tmp_path / "training-x.log"
    env = {**os.environ, "TABPILOT_STORE": f"sqlite:///{tmp_path / 'elsewhere.db'}"}
    pid = zygote.launch(["training", "x", "--workspace", str(tmp_path / "ws")], env, log)
    assert pid is not None and pid != os.getpid()
    assert gone(pid), "the worker lingers (a zombie, or it never ended)"
    text = log.read_text()
    assert "training job x failed" in text or "Traceback" in text, text  # no such job
    assert (tmp_path / "elsewhere.db").exists()  # it opened the store its env named
    again = zygote.launch(["nope"], env, log)  # the same zygote serves the next one
    assert again is not None and gone(again)
    assert "invalid choice: 'nope'" in log.read_text()


def test_a_dead_zygote_is_replaced(tmp_path, zygote):
    env = dict(os.environ)
    first = zygote.launch(["nope"], env, tmp_path / "a.log")
    assert first is not None
    zygote._process.kill()
    zygote._process.wait()
    second = zygote.launch(["nope"], env, tmp_path / "b.log")
    assert second is not None and gone(second)
    assert "invalid choice" in (tmp_path / "b.log").read_text()


def test_turned_off_or_broken_it_declines_and_the_caller_starts_a_fresh_process(
        tmp_path, zygote, monkeypatch):
    monkeypatch.setenv(zy.ENV, "0")
    assert zygote.launch(["nope"], dict(os.environ), tmp_path / "a.log") is None
    monkeypatch.delenv(zy.ENV)
    monkeypatch.setattr(zy.sys, "executable", str(tmp_path / "no-python"))
    assert zygote.launch(["nope"], dict(os.environ), tmp_path / "a.log") is None


def test_the_api_forks_training_workers_and_starts_others_afresh(tmp_path, monkeypatch):
    from tabpilot.api.context import ApiContext
    from tabpilot.api.locations import Locations
    from tabpilot.store import Store

    asked: list[str] = []
    monkeypatch.setattr(zy.ZYGOTE, "launch", lambda args, env, log: asked.append(args[0]))
    ctx = ApiContext(Store.for_workspace(tmp_path), tmp_path, Locations(tmp_path))
    for kind in ("training", "transform"):
        pid = ctx.launch(kind, "absent")  # the zygote declined (None): a fresh process
        assert gone(pid)
    assert asked == ["training"]
    assert "absent" in Path(tmp_path / "logs" / "training-absent.log").read_text()
