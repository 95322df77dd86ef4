"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl in a temp folder, on a
free loopback port, trust authentication, fsync off; stopped and removed afterwards.

The binaries come from PATH or Debian's /usr/lib/postgresql/<version>/bin (`.ci/run`
installs the `postgresql` package when neither has them). PostgreSQL refuses to run as
root, so as root the commands run as the `postgres` user (`runuser`), which is given the
temp folder. Nothing here is a stand-in: the tests talk to a real server.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tabpilot.serving.ports import free_port as _free_port

SUPERUSER = "tabpilot"


def find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                      key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return versions[-1] if versions else None


def missing() -> str | None:
    """Why a cluster cannot start here (None: it can)."""
    for name in ("initdb", "pg_ctl"):
        if find_binary(name) is None:
            return f"{name} not found (apt-get install postgresql, or run .ci/run)"
    if os.geteuid() == 0 and (shutil.which("runuser") is None or _no_user("postgres")):
        return "running as root without a `postgres` user to run the server as"
    return None


def _no_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return True
    return False


class PostgresCluster:
    """`with PostgresCluster() as pg: url = pg.new_database()`"""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="tabpilot-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self._names = itertools.count(1)
        self._as_postgres = os.geteuid() == 0

    def _run(self, *command: str) -> None:
        argv = list(command)
        if self._as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text()[-2000:] if log.is_file() else ""
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}{tail}")

    def start(self) -> PostgresCluster:
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(find_binary("initdb") or "initdb", "-D", str(self.data), "-U", SUPERUSER,
                  "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._run(find_binary("pg_ctl") or "pg_ctl", "-D", str(self.data), "-o", options,
                  "-l", str(self.folder / "server.log"), "-w", "-t", "60", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={SUPERUSER} "
                             "dbname=postgres", autocommit=True) as conn:
            conn.execute(sql)

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"t{next(self._names)}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')

    def restart(self) -> None:
        # -l: the new server writes to the log, not to this call's pipes (which it would
        # hold open, so the call would wait for it to exit)
        self._run(find_binary("pg_ctl") or "pg_ctl", "-D", str(self.data), "-m", "fast",
                  "-l", str(self.folder / "server.log"), "-w", "restart")

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").is_file():
                self._run(find_binary("pg_ctl") or "pg_ctl", "-D", str(self.data), "-m",
                          "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- fixtures: imported by tests/store/conftest.py and tests/cluster/conftest.py ---------
@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One server for the session; each test gets its own database from it."""
    why = missing()
    if why is not None:
        pytest.fail(f"cannot start PostgreSQL for the cluster tests: {why}")
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture
def postgres_url(postgres: PostgresCluster) -> Iterator[str]:
    """A fresh, empty database of the session's server, dropped afterwards."""
    url = postgres.new_database()
    yield url
    postgres.drop_database(url)
