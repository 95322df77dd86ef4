"""Where tabpilot keeps its state: one settings object, resolved in one place.

Every process that opens a workspace (the CLI, the Python API, `tabpilot serve`, the
SageMaker facade's worker processes) goes through `Store.for_workspace`, which asks
`Backends.resolve` for the store's URL: the value given in code (`AutoML(store=...)`,
`--store` on a worker's command line), else `$TABPILOT_STORE`, else the workspace's own
SQLite file, exactly as before there was a choice. The CLI's global `--store` option sets
`$TABPILOT_STORE` for its process, so the job processes and API workers it starts inherit
the same store without each command passing it on.

A leaf: imports only pydantic and `errors.py`, so `store/` can use it.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from tabpilot.errors import ConfigError

STORE_ENV = "TABPILOT_STORE"
DATABASE_FILE = "tabpilot.db"
# the dialects the store is tested against (tests/store, `make test-cluster`)
SCHEMES = ("sqlite", "postgresql+psycopg")


class Backends(BaseModel):
    """The services a workspace's state lives in. Today the metadata store; the executor
    and the artifact store of issue 16 join it here."""

    model_config = ConfigDict(frozen=True)

    store: str | None = None  # a SQLAlchemy URL; None: <workspace>/tabpilot.db

    @classmethod
    def resolve(cls, store: str | None = None) -> Backends:
        """The settings of this process: what the caller gave, else the environment."""
        url = store if store else os.environ.get(STORE_ENV) or None
        return cls(store=normalize_store_url(url) if url else None)

    def store_url(self, workspace: Path) -> str:
        """The store's URL for `workspace` (the default: its SQLite file)."""
        return self.store or default_store_url(workspace)

    @property
    def shared_store(self) -> bool:
        """True when the store is a server (not the workspace's own file)."""
        return self.store is not None and not self.store.startswith("sqlite")


def default_store_url(workspace: Path) -> str:
    return f"sqlite:///{(workspace / DATABASE_FILE).resolve()}"


def normalize_store_url(url: str) -> str:
    """A store URL checked for its scheme; `postgresql://` and `postgres://` mean the
    psycopg (3) driver, the one tabpilot installs (`pip install 'tabpilot[postgres]'`)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(f"store URL {url!r} has no scheme; expected sqlite:///PATH or "
                          "postgresql+psycopg://USER@HOST:PORT/DB (--store or $TABPILOT_STORE)")
    if scheme in ("postgresql", "postgres"):
        scheme = "postgresql+psycopg"
    if scheme not in SCHEMES:
        raise ConfigError(f"store URL scheme {scheme!r} is not supported; expected one of "
                          f"{', '.join(SCHEMES)} (--store or $TABPILOT_STORE)")
    return f"{scheme}://{rest}"
