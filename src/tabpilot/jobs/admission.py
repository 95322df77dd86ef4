"""Admission control: at most N jobs of a workspace train at once; the others wait in line.

A slot is an exclusive lock (flock) on one of N files under <workspace>/.admission/, so a
job process that dies for any reason (SIGKILL, the OOM killer) frees its slot at once,
with nothing to clean up. Waiting jobs hold a ticket named by their arrival time; a job's
place in line is the number of tickets before its own. Locks are per machine: on a cluster
the executor, not this, shares the machine's cores.

    with admission.slot(workspace, "churn", on_wait=lambda ahead: ...):
        ...  # the job's time limit starts here, not when it was submitted
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("tabpilot.jobs.admission")
FOLDER = ".admission"
POLL_SECONDS = 0.5


def max_concurrent_jobs() -> int:
    """TABPILOT_MAX_CONCURRENT_JOBS, else one job per two cores (each job's trials use
    every core it is given, so more jobs at once only make each miss its time limit)."""
    value = os.environ.get("TABPILOT_MAX_CONCURRENT_JOBS")
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            from tabpilot.errors import ConfigError

            raise ConfigError(f"TABPILOT_MAX_CONCURRENT_JOBS={value!r} is not a number; "
                              "give a whole number of jobs, e.g. 2") from None
    return max(1, (os.cpu_count() or 2) // 2)


def position(workspace: Path, job: str) -> int | None:
    """How many waiting jobs are ahead of `job`, or None if it is not waiting."""
    tickets = _tickets(workspace)
    names = [t.name.split("-", 1)[1] for t in tickets]
    return names.index(job) if job in names else None


@contextmanager
def slot(workspace: Path, job: str, limit: int | None = None,
         on_wait: Callable[[int], None] | None = None) -> Iterator[int]:
    """Hold one of the workspace's `limit` slots for the body; wait in line for one first.

    `on_wait(ahead)` is called whenever the number of jobs ahead changes while waiting."""
    limit = limit or max_concurrent_jobs()
    folder = Path(workspace) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    ticket = folder / f"ticket.{time.time_ns():020d}-{job}"
    staging = folder / f".new-{os.getpid()}-{time.time_ns()}"
    mine = os.open(staging, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(mine, fcntl.LOCK_EX)  # held while waiting: others see the waiter is alive
    os.rename(staging, ticket)  # locked before anyone sees it
    held = None
    last = None
    try:
        while held is None:
            ahead = [t for t in _tickets(workspace) if t.name < ticket.name]
            if not ahead:  # first in line: take a free slot, if any
                held = _take(folder, limit)
                if held is not None:
                    break
            if on_wait is not None and len(ahead) != last:
                on_wait(len(ahead))
            last = len(ahead)
            time.sleep(POLL_SECONDS)
    finally:
        ticket.unlink(missing_ok=True)
        os.close(mine)
    number, fd = held
    log.info("job %s holds slot %d of %d", job, number, limit)
    try:
        yield number
    finally:
        os.close(fd)  # releases the lock


def _take(folder: Path, limit: int) -> tuple[int, int] | None:
    for number in range(limit):
        fd = os.open(folder / f"slot-{number}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return number, fd
        except BlockingIOError:
            os.close(fd)
    return None


def _tickets(workspace: Path) -> list[Path]:
    """The live tickets in arrival order. A waiter holds a lock on its ticket; a ticket
    nobody holds was left by a waiter that died, and is removed."""
    folder = Path(workspace) / FOLDER
    if not folder.is_dir():
        return []
    live = []
    for ticket in sorted(folder.glob("ticket.*"), key=lambda p: p.name):
        try:
            fd = os.open(ticket, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            ticket.unlink(missing_ok=True)  # we got the lock: its owner is gone
        except BlockingIOError:
            live.append(ticket)
        finally:
            os.close(fd)
    return live
