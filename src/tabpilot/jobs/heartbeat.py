"""Liveness of a job's process, seen from any process or machine sharing its store.

The process that runs a job stamps the job's row every `interval()` seconds (a daemon
thread: it beats while the job computes). A reader that finds an active job silent for
longer than `grace()` marks it Failed (jobs.views.check_alive). A process id would only
tell something on the machine that started the job, and a reused pid lies there too.

A row that no process has stamped yet (the SageMaker API creates it, then starts a worker)
counts its creation as its first heartbeat, with the longer `start_grace()`: a worker
needs a few seconds of imports before its first beat, more on a loaded machine.
"""

from __future__ import annotations

import logging
import os
import threading

from tabpilot.store import Store

log = logging.getLogger("tabpilot.jobs.heartbeat")

DEFAULT_SECONDS = 5.0
ENV = "TABPILOT_HEARTBEAT_SECONDS"
GRACE_BEATS = 3  # beats a job may miss (a busy database, a long pause) before it is dead
MIN_GRACE_SECONDS = 3.0
START_GRACE_SECONDS = 60.0
DEAD_REASON = "the job process ended unexpectedly"


def interval() -> float:
    """Seconds between heartbeats: TABPILOT_HEARTBEAT_SECONDS, else 5."""
    raw = os.environ.get(ENV)
    try:
        value = float(raw) if raw else DEFAULT_SECONDS
    except ValueError:
        log.warning("%s=%r is not a number of seconds; using %g", ENV, raw, DEFAULT_SECONDS)
        return DEFAULT_SECONDS
    return value if value > 0 else DEFAULT_SECONDS


def grace() -> float:
    """How long an active job may stay silent before it is taken for dead."""
    return max(GRACE_BEATS * interval(), MIN_GRACE_SECONDS)


def start_grace() -> float:
    """The same for a job whose process has not beaten once yet."""
    return max(grace(), START_GRACE_SECONDS)


class Heartbeat:
    """Stamps a job's row from a daemon thread until stopped. Usable as a context manager;
    start() and stop() may be called more than once."""

    def __init__(self, store: Store, job: str, seconds: float | None = None) -> None:
        self.store = store
        self.job = job
        self.seconds = seconds or interval()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Heartbeat:
        if self._thread is None:
            self._beat()  # at once: the row says alive before the first interval ends
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name=f"heartbeat-{self.job}")
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            self._beat()

    def _beat(self) -> None:
        try:
            self.store.beat(self.job)
        except Exception:  # a locked or unreachable database: the next beat may pass
            log.warning("heartbeat of job %s failed", self.job, exc_info=True)

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
