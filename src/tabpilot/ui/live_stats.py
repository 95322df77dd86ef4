"""An endpoint's request count, latency percentiles and error rate over the last minutes,
read from the Prometheus metrics the server already keeps (serving/observe.py).

Prometheus counters and histograms are totals since the server started; a rate "over the
last five minutes" is the difference between now and a reading taken five minutes ago,
as Prometheus' own `increase()` does. `Window` keeps a few readings (one at most every
`every` seconds, taken whenever someone asks: the endpoints page polls while it is open)
and subtracts the newest one at least `minutes` old. Until such a reading exists the
figures are the totals since the server started, and say so: there is no second counter
that could disagree with /metrics.

Percentiles are interpolated inside the histogram's buckets like PromQL's
`histogram_quantile`: exact to a bucket (serving/observe.py BUCKETS), which is what an
operator's dashboard over the same metrics shows.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

WINDOW_MINUTES = 5.0
REQUESTS = "tabpilot_http_requests"
LATENCY = "tabpilot_http_request_duration_seconds"


@dataclass
class Totals:
    """One endpoint's totals in one reading: requests, failed requests (status >= 400)
    and the latency histogram's cumulative bucket counts (upper bounds in `bounds`)."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)

    def minus(self, earlier: Totals | None) -> Totals:
        if earlier is None:
            return self
        return Totals(self.requests - earlier.requests, self.errors - earlier.errors,
                      {b: n - earlier.buckets.get(b, 0.0) for b, n in self.buckets.items()})


@dataclass
class Stats:
    """What the endpoints page shows for one endpoint."""

    requests: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    span_s: float | None  # the window really covered; None: since the server started

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "errors": self.errors,
                "error_rate": self.error_rate, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
                "window_seconds": self.span_s}


def read(metrics: Any) -> dict[str, Totals]:
    """Every endpoint's totals now, from the app's `Metrics` (only the requests counter and
    the latency histogram are read: the store-backed collectors are not touched)."""
    found: dict[str, Totals] = {}
    for family in metrics.requests.collect():
        for sample in family.samples:
            model = sample.labels.get("model")
            if not model or not sample.name.endswith("_total"):
                continue
            totals = found.setdefault(model, Totals())
            totals.requests += sample.value
            if _failed(sample.labels.get("status", "")):
                totals.errors += sample.value
    for family in metrics.latency.collect():
        for sample in family.samples:
            model = sample.labels.get("model")
            if not model or not sample.name.endswith("_bucket"):
                continue
            bound = float(sample.labels["le"])  # "+Inf" reads as inf
            buckets = found.setdefault(model, Totals()).buckets
            buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return found


def _failed(status: str) -> bool:
    return status.isdigit() and int(status) >= 400


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """PromQL's histogram_quantile over cumulative bucket counts, in seconds."""
    bounds = sorted(buckets)
    if not bounds:
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    counts = [buckets[b] for b in bounds]
    i = bisect.bisect_left(counts, rank)
    i = min(i, len(bounds) - 1)
    upper = bounds[i]
    if math.isinf(upper):  # beyond the last finite bucket: its bound is all that is known
        return bounds[i - 1] if i > 0 else None
    lower = bounds[i - 1] if i > 0 else 0.0
    below = counts[i - 1] if i > 0 else 0.0
    inside = counts[i] - below
    if inside <= 0:
        return upper
    return lower + (upper - lower) * (rank - below) / inside


class Window:
    """Readings of one app's metrics, and the figures over the last `minutes`."""

    def __init__(self, metrics: Any, minutes: float = WINDOW_MINUTES, every: float = 5.0,
                 clock: Any = time.monotonic) -> None:
        self.metrics = metrics
        self.span = minutes * 60
        self.every = every
        self.clock = clock
        self._readings: deque[tuple[float, dict[str, Totals]]] = deque()
        self._lock = threading.Lock()

    def stats(self) -> dict[str, Stats]:
        """{endpoint: Stats} for every endpoint that answered since the server started."""
        now = self.clock()
        current = read(self.metrics)
        with self._lock:
            if not self._readings or now - self._readings[-1][0] >= self.every:
                self._readings.append((now, current))
            # keep one reading older than the window (the baseline), drop the rest
            while len(self._readings) > 1 and now - self._readings[1][0] >= self.span:
                self._readings.popleft()
            base_time, base = self._readings[0]
        if now - base_time < self.span:  # nothing old enough yet: totals since the start
            base_time, base = None, {}
        out = {}
        for name, totals in current.items():
            delta = totals.minus(base.get(name))
            p50, p99 = quantile(0.5, delta.buckets), quantile(0.99, delta.buckets)
            out[name] = Stats(int(round(delta.requests)), int(round(delta.errors)),
                              None if p50 is None else p50 * 1000,
                              None if p99 is None else p99 * 1000,
                              None if base_time is None else now - base_time)
        return out

    def of(self, name: str) -> Stats:
        return self.stats().get(name) or Stats(0, 0, None, None, None)


def window_of(app: Any) -> Window | None:
    """The app's Window, made on first use (None when the app keeps no metrics)."""
    metrics = getattr(app.state, "metrics", None)
    if metrics is None:
        return None
    existing = getattr(app.state, "studio_endpoint_stats", None)
    if existing is None:
        existing = app.state.studio_endpoint_stats = Window(metrics)
    return existing
