"""Ctrl-C during a job is a stop request; a second one interrupts at once."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tabpilot.jobs.interrupt import Interrupt


def _sigint() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # the handler runs in the main thread between bytecodes


def test_the_first_ctrl_c_is_recorded_the_second_interrupts() -> None:
    interrupt = Interrupt()
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with interrupt.stops_the_job():
            _sigint()
            assert interrupt.requested
            _sigint()
    assert signal.getsignal(signal.SIGINT) is before  # restored on the way out


def test_outside_the_main_thread_nothing_changes() -> None:
    interrupt = Interrupt()
    seen = []

    def job() -> None:
        with interrupt.stops_the_job():
            seen.append(signal.getsignal(signal.SIGINT))

    worker = threading.Thread(target=job)
    worker.start()
    worker.join()
    assert seen == [signal.getsignal(signal.SIGINT)] and not interrupt.requested
