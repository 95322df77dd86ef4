"""Ctrl-C asks a running job to stop, as `tabpilot stop` does.

A KeyboardInterrupt raised wherever the signal happens to land is not a safe way to stop
a job: it can land while a trial process is being started, which leaves that trial
untracked, or inside a finalizer, where Python ignores it and the job runs on to its time
limit. So, while a job runs in the main thread, the first SIGINT only records the request;
the job's loop sees it at its next stop check (as it sees a `tabpilot stop`), ends the
trials, keeps what finished and ends as Stopped. A second Ctrl-C interrupts at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class Interrupt:
    def __init__(self) -> None:
        self.requested = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def stops_the_job(self) -> Iterator[None]:
        """Within: SIGINT sets `requested` (the main thread only: elsewhere signals are the
        main thread's business, and nothing changes)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, self._handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
