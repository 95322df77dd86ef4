"""Live updates of a job page by Server-Sent Events.

The stream sends `update` (data: the job's fingerprint) whenever the job row or its
candidates change, checked every TICK seconds, so a finished trial reaches an open page
within about TICK plus one fragment fetch; studio.js then fetches the page's live part
(/studio/jobs/{job}/live) and swaps it in. It ends, so neither tests nor the server's
shutdown ever wait on it: when the client goes, with `end` once the job has ended, and
after STREAM_SECONDS (EventSource reconnects by itself after `retry`). The store is read
in the thread pool; each tick costs two indexed queries.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from tabpilot.jobs import status as st
from tabpilot.store import JobRow, Store

TICK = 0.25
STREAM_SECONDS = 30.0
RETRY_MS = 1000


def fingerprint(job: JobRow, candidates: list[Any]) -> str:
    """Changes whenever anything the job page shows changes."""
    ended = max((c.ended or 0.0 for c in candidates), default=0.0)
    states = Counter(c.status for c in candidates)
    counts = "/".join(str(states[s]) for s in sorted(states))
    return (f"{job.status}|{job.secondary_status}|{job.best_candidate}|{job.modified:.3f}|"
            f"{counts}|{ended:.3f}")


def read_state(store: Store, job: str) -> tuple[str, bool]:
    row = store.get_job(job)
    return fingerprint(row, store.list_candidates(job)), row.status not in st.ACTIVE


async def changes(read: Callable[[], Awaitable[tuple[str, bool]]],
                  gone: Callable[[], Awaitable[bool]], tick: float = TICK,
                  lifetime: float = STREAM_SECONDS,
                  clock: Callable[[], float] = time.monotonic) -> AsyncIterator[str]:
    """SSE messages: the first state at once, then one per change, `end` when the job has
    ended; stops when `gone()` says the client left or `lifetime` has passed."""
    yield f"retry: {RETRY_MS}\n\n"
    until = clock() + lifetime
    last = None
    while clock() < until:
        if await gone():
            return
        state, ended = await read()
        if state != last:
            last = state
            yield f"event: update\ndata: {state}\n\n"
        if ended:
            yield "event: end\ndata: ended\n\n"
            return
        await asyncio.sleep(tick)


def stream(request: Request, store: Store, job: str) -> StreamingResponse:
    async def read() -> tuple[str, bool]:
        return await run_in_threadpool(read_state, store, job)

    return StreamingResponse(changes(read, request.is_disconnected),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
