"""Where tabpilot keeps its state: one settings object, resolved in one place.

Every process that opens a workspace (the CLI, the Python API, `tabpilot serve`, the
SageMaker facade's worker processes) goes through `Store.for_workspace`, which asks
`Backends.resolve` for the store's URL: the value given in code (`AutoML(store=...)`,
`--store` on a worker's command line), else `$TABPILOT_STORE`, else the workspace's own
SQLite file, exactly as before there was a choice. The CLI's global `--store` option sets
`$TABPILOT_STORE` for its process, so the job processes and API workers it starts inherit
the same store without each command passing it on. The executor that runs trials is
resolved the same way (`AutoML(executor=)`, else `$TABPILOT_EXECUTOR`, which `--executor`
sets, else `local`; `execution/select.py` turns the name into an Executor).

A leaf: imports only pydantic and `errors.py`, so `store/` can use it.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from tabpilot.errors import ConfigError

STORE_ENV = "TABPILOT_STORE"
ARTIFACTS_ENV = "TABPILOT_ARTIFACTS"
EXECUTOR_ENV = "TABPILOT_EXECUTOR"
EXECUTORS = ("local", "ray", "auto")  # and ray://HOST:PORT
DATABASE_FILE = "tabpilot.db"
# the dialects the store is tested against (tests/store, `make test-cluster`)
SCHEMES = ("sqlite", "postgresql+psycopg")


class Backends(BaseModel):
    """The services a workspace's state lives in and its trials run on: the metadata
    store, the artifact store, the executor."""

    model_config = ConfigDict(frozen=True)

    store: str | None = None  # a SQLAlchemy URL; None: <workspace>/tabpilot.db
    # where model directories, reports and notebooks are published: a folder or an
    # fsspec URL (s3://bucket/prefix); None: the workspace folder itself, as before
    artifacts: str | None = None
    # what runs trials: local (a process per trial), ray (this process's Ray: $RAY_ADDRESS,
    # else a Ray started for it), ray://HOST:PORT (a cluster's client port), auto
    executor: str = "local"

    @classmethod
    def resolve(cls, store: str | None = None, artifacts: str | None = None,
                executor: str | None = None) -> Backends:
        """The settings of this process: what the caller gave, else the environment."""
        url = store if store else os.environ.get(STORE_ENV) or None
        where = artifacts if artifacts else os.environ.get(ARTIFACTS_ENV) or None
        runs = executor if executor else os.environ.get(EXECUTOR_ENV) or "local"
        return cls(store=normalize_store_url(url) if url else None,
                   artifacts=normalize_artifacts_url(where) if where else None,
                   executor=normalize_executor(runs))

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


def normalize_artifacts_url(url: str) -> str:
    """An artifact store's location checked for its form: a folder (made absolute), a
    file:// URL, or an fsspec URL with a bucket or host (s3://bucket/prefix)."""
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        return str(Path(url).expanduser().resolve())
    if scheme == "file":
        return str(Path(rest).resolve())
    if not scheme.isidentifier() or not rest.strip("/"):
        raise ConfigError(f"artifact store {url!r} is not a folder or a URL such as "
                          "s3://bucket/prefix (--artifacts or $TABPILOT_ARTIFACTS)")
    return f"{scheme}://{rest.rstrip('/')}"


def normalize_executor(spec: str) -> str:
    """An executor's name checked: local, ray, auto, or ray://HOST:PORT (a Ray cluster's
    client server, port 10001 unless `ray start --ray-client-server-port` said otherwise)."""
    text = spec.strip()
    if text.lower() in EXECUTORS:
        return text.lower()
    scheme, sep, rest = text.partition("://")
    host, colon, port = rest.rstrip("/").rpartition(":")
    if scheme.lower() == "ray" and sep and host and colon and port.isdigit() \
            and 0 < int(port) < 65536 and "/" not in host:
        return f"ray://{host}:{int(port)}"
    raise ConfigError(f"executor {spec!r} is not one of local, ray, ray://HOST:PORT, auto "
                      "(--executor or $TABPILOT_EXECUTOR)")
