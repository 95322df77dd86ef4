"""The store's schema, versioned with Alembic and brought up to date when a store opens.

The revisions live in `versions/` (shipped with the package; no alembic.ini). `upgrade`
is what `Store` calls on every open, so it must be cheap when there is nothing to do:
one `SELECT` of alembic_version, and Alembic is imported only when that is not `HEAD`.

Two processes opening one new database at once must not both create it. Each upgrade
holds the database's write lock for its whole transaction (SQLite: `BEGIN IMMEDIATE`;
PostgreSQL: a transaction-scoped advisory lock, and its DDL is transactional) and looks
at the version again under it, so the second one finds the work done. SQLite keeps a
retry besides (a lock wait past busy_timeout, a file being created), caught by exception
class, never by message.

A new revision: `alembic -x ... revision` is not wired up; copy the newest file in
`versions/`, give it the next number as `revision` and the newest as `down_revision`, and
raise `HEAD` here (tests/store checks that it matches the scripts' head).
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

HEAD = "0003"
FOLDER = Path(__file__).parent
SQLITE_ATTEMPTS = 12
SQLITE_BUSY, SQLITE_LOCKED = 5, 6  # sqlite3's result codes, read from the exception
# pg_advisory_xact_lock's key: any constant, the same in every tabpilot ("tabp" in ascii)
ADVISORY_KEY = 0x74616270


def current(engine: Engine) -> str | None:
    """The database's revision; None when it has none (new, or made before migrations).
    A server that cannot be reached raises from `connect`, before the lookup."""
    with engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except DBAPIError:  # no such table: the slow path finds out under the lock
            return None


def upgrade(engine: Engine) -> None:
    """Bring the database to `HEAD`; a no-op (one query) when it is there already."""
    if current(engine) == HEAD:
        return
    attempts = SQLITE_ATTEMPTS if engine.dialect.name == "sqlite" else 1
    for attempt in range(attempts):
        try:
            with engine.connect() as conn:
                _lock(conn)
                if _version(conn) != HEAD:
                    _run(conn)
                conn.commit()
            return
        except (OperationalError, IntegrityError) as exc:
            # SQLite only: another process held the write lock past busy_timeout, or
            # stamped the version between our look and our write: look again. Any other
            # error (a broken file, a failing revision) is raised at once.
            if attempt == attempts - 1 or not _contended(exc):
                raise
            time.sleep(0.05 * (attempt + 1))


def script_head() -> str | None:
    """The head revision of the scripts in `versions/` (what `HEAD` must say)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(FOLDER)).get_current_head()


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_KEY})


def _version(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _run(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(FOLDER))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")



def _contended(exc: OperationalError | IntegrityError) -> bool:
    """Lost a race with another opener (by exception class and SQLite's result code)."""
    if isinstance(exc, IntegrityError):
        return True
    # an extended code (SQLITE_BUSY_SNAPSHOT, ...) carries its primary one in the low byte
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)
