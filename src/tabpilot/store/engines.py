"""SQLAlchemy engines for store URLs: SQLite's pragmas, one shared pool per server URL.

SQLite: WAL (a reader in another terminal never blocks the job's writes), a 30 s busy
timeout, foreign keys on; set on every connection, for SQLite only. PostgreSQL needs none.
"""

from __future__ import annotations

import os
import sqlite3
import time

from sqlalchemy import Engine, create_engine, event

from tabpilot.errors import MissingDependencyError

_SERVER_ENGINES: dict[str, Engine] = {}
WAL_SWITCH_SECONDS = 30.0  # as long as busy_timeout: the switch is refused, not waited for
SQLITE_BUSY, SQLITE_LOCKED = 5, 6  # sqlite3's primary result codes


def engine_for(url: str) -> Engine:
    """The engine for a store URL; SQLite gets its pragmas on every connection.

    A server's engine (and its connection pool) is shared by every Store of this process
    on that URL: code that opens a store per request (a server's lookups) must not open a
    pool of connections each time. SQLite files keep an engine per Store, as before."""
    if url in _SERVER_ENGINES:
        return _SERVER_ENGINES[url]
    try:
        engine = create_engine(url, future=True, pool_pre_ping=not url.startswith("sqlite"))
    except ModuleNotFoundError as exc:  # the URL's driver (psycopg) is an extra
        raise MissingDependencyError(exc.name or "psycopg", "postgres") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        _SERVER_ENGINES[url] = engine
    return engine


def _forget_engines_after_fork() -> None:
    """A forked child must not use its parent's connections (SQLAlchemy's advice)."""
    for engine in _SERVER_ENGINES.values():
        engine.dispose(close=False)
    _SERVER_ENGINES.clear()


os.register_at_fork(after_in_child=_forget_engines_after_fork)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # the wait first: switching a new file to WAL takes a lock another opener may hold
    cursor.execute("PRAGMA busy_timeout=30000")
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _switch_to_wal(cursor) -> None:
    """`PRAGMA journal_mode=WAL`, tried again while another opener holds the new file.

    SQLite answers the switch with SQLITE_BUSY at once, without its busy handler, when a
    second connection is opening the same new file (the switch needs the file alone); once
    one opener has switched, the mode is the file's and later switches are no-ops."""
    deadline, pause = time.monotonic() + WAL_SWITCH_SECONDS, 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            if code not in (SQLITE_BUSY, SQLITE_LOCKED) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
