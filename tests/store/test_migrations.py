"""The store's schema under Alembic: an older database upgrades in place without losing a
row, opening twice changes nothing, openers racing on a new database all succeed, and an
up-to-date store opens without importing Alembic at all. On SQLite and (cluster) PostgreSQL."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tabpilot.store import Store, migrations


def _job(store: Store, name: str = "old-1") -> None:
    store.create_job(name=name, status="Completed", secondary_status="Completed", target="y",
                     input_uri="/data/t.csv", problem_type="binary", metric="F1",
                     request={"target": "y"}, job_dir=str(Path(store.root or "/") / name))


def _columns(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def _as_an_older_tabpilot_left_it(url: str) -> None:
    """No alembic_version, and columns added since missing (this week's endpoints.variant,
    the heartbeat, the pid's host)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        for table, column in (("endpoints", "variant"), ("jobs", "heartbeat"), ("jobs", "host")):
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
    engine.dispose()


def test_head_names_the_newest_revision_script() -> None:
    assert migrations.HEAD == migrations.script_head()


def test_an_older_database_upgrades_in_place_without_losing_rows(store: Store) -> None:
    _job(store)
    store.put_endpoint("ep", str(Path(store.root or "/") / "model"), job="old-1")
    _as_an_older_tabpilot_left_it(store.url)
    assert migrations.current(store.engine) is None
    for _ in range(2):  # the second open finds nothing to do
        again = Store(store.url, store.root)
        assert migrations.current(again.engine) == migrations.HEAD
        assert {"variant"} <= _columns(store.url, "endpoints")
        assert {"heartbeat", "host"} <= _columns(store.url, "jobs")
        assert [j.name for j in again.list_jobs()] == ["old-1"]
        assert again.get_job("old-1").heartbeat is None
        assert again.get_endpoint("ep").job == "old-1" and again.get_endpoint("ep").variant is None
        again.engine.dispose()
    # and the new columns work
    store.put_endpoint("ep", str(Path(store.root or "/") / "model2"), variant="AllTraffic")
    assert store.get_endpoint("ep").variant == "AllTraffic"


def _open(url: str, root: str, barrier) -> str | None:
    barrier.wait()
    try:
        Store(url, Path(root)).engine.dispose()
    except Exception as exc:  # reported to the test, which names it
        return f"{type(exc).__name__}: {exc}"
    return None


def test_openers_racing_on_a_new_database_all_succeed(tmp_path: Path,
                                                     store_url: str | None) -> None:
    url = store_url or f"sqlite:///{tmp_path / 'race.db'}"
    # forkserver, not fork: a process forked while another thread (Ray's, in the cluster
    # session) holds a lock can wait on it forever, and the pool's join with it
    context = multiprocessing.get_context("forkserver")
    with context.Manager() as manager, context.Pool(4) as pool:
        barrier = manager.Barrier(4)
        errors = pool.starmap_async(_open, [(url, str(tmp_path), barrier)] * 4).get(timeout=300)
    assert errors == [None] * 4
    store = Store(url, tmp_path)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    _job(store)
    assert store.job_exists("old-1")


def test_a_pid_is_recorded_with_its_host(store: Store) -> None:
    import socket

    _job(store)
    assert store.get_job("old-1").host is None  # no process yet
    store.update_job("old-1", pid=4242)
    row = store.get_job("old-1")
    assert (row.pid, row.host) == (4242, socket.gethostname())
    store.update_job("old-1", pid=7, host="node-2")
    assert store.get_job("old-1").host == "node-2"


def test_an_up_to_date_workspace_opens_without_importing_alembic(tmp_path: Path) -> None:
    Store.for_workspace(tmp_path).engine.dispose()
    code = ("import sys; from pathlib import Path; from tabpilot.store import Store; "
            f"Store.for_workspace(Path({str(tmp_path)!r})).list_jobs(); "
            "print('alembic' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={"PATH": "/usr/bin:/bin"})
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("broken", ["sqlite:///{}/no/such/folder/x.db"])
def test_a_store_that_cannot_open_keeps_its_real_error(tmp_path: Path, broken: str) -> None:
    from sqlalchemy.exc import OperationalError

    with pytest.raises(OperationalError):
        Store(broken.format(tmp_path))
