"""What the pages read of an ended job, kept in memory while the job row stays the same.

A job that has ended changes only through its row (resume reopens it, `tabpilot report`
records its reports: both bump `modified`), so its leaderboard and candidate rows can be
kept under (store, name, status, modified, best candidate): the job page of a job with 500
candidates then costs one indexed read instead of three full ones. Running jobs are
always read fresh.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import pandas as pd

from tabpilot.jobs import status as st
from tabpilot.jobs.views import leaderboard
from tabpilot.store import JobRow, Store

SIZE = 32
T = TypeVar("T")
_lock = threading.Lock()
_kept: OrderedDict[tuple, tuple[pd.DataFrame, list[Any]]] = OrderedDict()
_derived: OrderedDict[tuple, Any] = OrderedDict()


def board_and_candidates(store: Store, job: JobRow) -> tuple[pd.DataFrame, list[Any]]:
    """The job's leaderboard (jobs/views.py) and its candidate rows; don't change them."""
    if job.status in st.ACTIVE:
        return leaderboard(store, job.name), store.list_candidates(job.name)
    key = (store.url, job.name, job.status, job.modified, job.best_candidate)
    with _lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
    found = leaderboard(store, job.name), store.list_candidates(job.name)
    with _lock:
        _kept[key] = found
        while len(_kept) > SIZE:
            _kept.popitem(last=False)
    return found


def derived(store: Store, job: JobRow, what: Hashable, compute: Callable[[], T]) -> T:
    """`compute()` (something made from the job's rows: the scatter's markup, the history),
    kept for an ended job under the same key as its rows; computed afresh for a running one."""
    if job.status in st.ACTIVE:
        return compute()
    key = (store.url, job.name, job.status, job.modified, job.best_candidate, what)
    with _lock:
        if key in _derived:
            _derived.move_to_end(key)
            return _derived[key]
    value = compute()
    with _lock:
        _derived[key] = value
        while len(_derived) > SIZE * 4:
            _derived.popitem(last=False)
    return value
