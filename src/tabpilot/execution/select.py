"""Which executor runs a job's trials: the one place a name becomes an Executor.

`local` (the default) forks a process per trial on this machine; `ray` and
`ray://HOST:PORT` run trials as Ray tasks (`execution/onray.py`); `auto` is Ray when this
process is inside a Ray cluster (`$RAY_ADDRESS` set, or Ray already initialised here, as
in a Ray job or a notebook that called `ray.init`), else local. The name comes from
`settings.Backends`: the caller's (`AutoML(executor=)`), else `$TABPILOT_EXECUTOR` (which
the CLI's `--executor` sets for the processes it starts), else `local`.
"""

from __future__ import annotations

import logging
import os
import sys

from tabpilot.execution.base import Executor
from tabpilot.settings import Backends

log = logging.getLogger("tabpilot.execution.select")


def inside_ray() -> bool:
    """True when this process belongs to a Ray cluster: `$RAY_ADDRESS`, or a Ray this
    process has initialised (without importing Ray when nothing did)."""
    if os.environ.get("RAY_ADDRESS"):
        return True
    ray = sys.modules.get("ray")
    return bool(ray is not None and getattr(ray, "is_initialized", lambda: False)())


def resolve_name(name: str | None = None) -> str:
    """The executor's name for this process: local, ray or ray://HOST:PORT (auto decided)."""
    chosen = Backends.resolve(executor=name).executor
    if chosen != "auto":
        return chosen
    if not inside_ray():
        return "local"
    try:
        import ray  # noqa: F401
    except ImportError:
        log.warning("$RAY_ADDRESS is set but Ray is not installed (pip install "
                    "'tabpilot[ray]'); trials run on this machine")
        return "local"
    return "ray"


def make_executor(name: str | Executor | None, n_workers: int | None,
                  local_workers: int) -> Executor:
    """The executor named (an Executor is used as given). `n_workers`: the trials at once
    the user asked for (None: the executor's own choice); `local_workers`: the local
    executor's default for this machine."""
    if isinstance(name, Executor):
        return name
    chosen = resolve_name(name)
    if chosen == "local":
        from tabpilot.execution.local import LocalProcessExecutor

        return LocalProcessExecutor(n_workers or local_workers)
    from tabpilot.execution.onray import RayExecutor

    return RayExecutor(n_workers, address=None if chosen == "ray" else chosen)
