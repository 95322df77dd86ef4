"""An endpoint's lane: small requests to a model known to be quick are answered on the event
loop; everything else (a slow model, a large body, a busy lane, a model not yet timed, a
model just swapped in) goes to a worker thread. Each test names its own `inline_ms`, far
from the times its functions take, so that no machine's speed decides the outcome."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx

from tabpilot.serving.app import EndpointRegistry, ServerSettings, model_app
from tabpilot.serving.limits import INLINE_BYTES, RECENT, Lane
from tabpilot.store import Store

QUICK = 10_000.0  # ms: any call counts as quick
STRICT = 1.0  # ms: a call that sleeps 20 ms never does


def _where() -> int:
    return threading.get_ident()


def _calls(lane: Lane, func, n: int, small: bool = True) -> tuple[int, list[int]]:
    """The event loop's thread, and the thread each of `n` sequential calls ran on."""
    async def main() -> tuple[int, list[int]]:
        return threading.get_ident(), [await lane.run(func, small=small) for _ in range(n)]
    return asyncio.run(main())


def test_a_quick_model_answers_small_requests_on_the_event_loop_once_timed() -> None:
    loop, ran = _calls(Lane(2, inline_ms=QUICK), _where, RECENT + 3)
    assert loop not in ran[:RECENT]  # not yet timed: worker threads
    assert ran[RECENT:] == [loop] * 3


def test_a_slow_model_stays_in_worker_threads() -> None:
    def slow() -> int:
        time.sleep(0.02)
        return threading.get_ident()

    lane = Lane(2, inline_ms=STRICT)
    loop, ran = _calls(lane, slow, RECENT + 4)
    assert loop not in ran
    assert len(lane.recent) == RECENT and not lane.quick()


def test_a_large_request_never_runs_on_the_event_loop() -> None:
    lane = Lane(2, inline_ms=QUICK)
    lane.recent.extend([0.0] * RECENT)  # known quick
    loop, ran = _calls(lane, _where, 3, small=False)
    assert loop not in ran


def test_a_busy_lane_sends_a_small_request_to_a_thread() -> None:
    lane = Lane(2, inline_ms=QUICK)
    lane.recent.extend([0.0] * RECENT)
    release = threading.Event()

    def held() -> int:
        assert release.wait(30)
        return threading.get_ident()

    async def main() -> tuple[int, int]:
        running = asyncio.ensure_future(lane.run(held, small=False))
        while lane.admitted == 0:  # the held call has its place
            await asyncio.sleep(0.01)
        second = await lane.run(_where, small=True)  # admitted: 2, so not inline
        release.set()
        await running
        return threading.get_ident(), second

    loop, second = asyncio.run(main())
    assert second != loop


def test_the_median_of_the_recent_calls_decides() -> None:
    lane = Lane(2, inline_ms=STRICT)
    lane.recent.extend([0.5] * (RECENT // 2) + [0.0001] * (RECENT // 2))
    assert not lane.quick()  # half of them slow: the upper median is slow
    lane.recent.append(0.0001)  # the oldest slow one goes
    assert lane.quick()


def test_a_swapped_in_model_is_timed_afresh(tmp_path: Path, models) -> None:
    store = Store.for_workspace(tmp_path)
    store.put_endpoint("e", str(models["binary"]))
    registry = EndpointRegistry(store, tmp_path / "capture")
    registry.refresh()
    lane = registry.loaded("e").lane
    lane.recent.extend([0.0] * RECENT)
    store.put_endpoint("e", str(models["binary_b"]))  # a redeploy: a new version
    registry.refresh()
    assert registry.loaded("e").lane is lane  # the lane, with its limits, carries over
    assert not lane.recent and not lane.quick()


def test_answers_are_the_same_on_the_loop_and_in_threads(models, serve_app) -> None:
    server = serve_app(model_app(models["binary"], settings=ServerSettings()))
    body = "C00001,12,plus,71.5\n"
    assert len(body) <= INLINE_BYTES
    with httpx.Client() as client:
        answers = [client.post(f"{server.url}/invocations", content=body,
                               headers={"Content-Type": "text/csv"}) for _ in range(RECENT + 4)]
    assert {r.status_code for r in answers} == {200}
    assert len({r.text for r in answers}) == 1
