"""A server store that goes away (a PostgreSQL restart, a failover) is waited for.

Each public method of a server store runs again, for up to RETRY_SECONDS, when its
connection fails, then raises StoreUnavailableError (one line), so a job's writers ride
out a restart and never hang. SQLite stores are called once, as before. A transaction that
failed was rolled back, so running it again is safe; an insert whose commit was lost on
the wire comes back as the IntegrityError it is. Only the outermost call waits: a public
method that calls another one does not multiply the wait.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from tabpilot.errors import StoreUnavailableError

log = logging.getLogger("tabpilot.store")
RETRY_SECONDS = 60.0  # how long a server store's caller waits for its database to return
_inside = threading.local()  # set while an outer call of this thread is retrying


def first_line(exc: BaseException | None) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _lost(exc: DBAPIError) -> bool:
    return isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated


def retrying(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method` of a store (which has `engine` and `shown_url`), run again while a server
    store's connection fails."""
    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.engine.dialect.name == "sqlite" or getattr(_inside, "active", False):
            return method(self, *args, **kwargs)
        deadline, pause = time.monotonic() + RETRY_SECONDS, 0.2
        _inside.active = True
        try:
            while True:
                try:
                    return method(self, *args, **kwargs)
                except DBAPIError as exc:
                    if not _lost(exc):
                        raise
                    if time.monotonic() + pause > deadline:
                        raise StoreUnavailableError(
                            f"lost the store {self.shown_url} for {RETRY_SECONDS:g}s: "
                            f"{first_line(exc.orig)}; start the database again") from None
                    log.warning("store %s: %s; trying again in %.1fs", self.shown_url,
                                first_line(exc.orig), pause)
                    time.sleep(pause)
                    pause = min(pause * 2, 2.0)
        finally:
            _inside.active = False
    return run


def retry_public_methods(cls: type) -> type:
    """Every public query and update of `cls` (not `session`, not class/static methods)
    wrapped by `retrying`."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and name != "session" and callable(member) \
                and not isinstance(member, classmethod | staticmethod):
            setattr(cls, name, retrying(member))
    return cls
