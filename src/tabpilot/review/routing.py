"""Send an endpoint's doubtful predictions to human review, off the request path.

A route (store resource `review-route`, named by the endpoint) says: start a loop of flow F
for every predicted row whose confidence (the top probability) is below B, or with
`margin` whose top-two probability gap is below B, plus a random `audit_percent` of all
other rows, so reviewers also see what the model is sure of (its blind spots are there).

The server hands every prediction of a routed endpoint to `Router.tap`, which only puts it
on a queue bounded in rows (beyond CAPACITY the request's rows are dropped and counted:
review must never slow or fail a request, nor grow the server's memory without end). One
worker thread takes items in order, recomputes the probabilities with the same model
object that answered, and starts one loop per selected row. A loop's name
is derived from (endpoint, inference id, row), so a repeated inference id starts no second
loop, and the audit draw is a hash of the same key: the choice is reproducible.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import queue
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.errors import NotFoundError, ResourceExistsError, TabpilotError
from tabpilot.review.desk import ReviewDesk
from tabpilot.review.flows import ROUTE, load_flow
from tabpilot.store import Store

log = logging.getLogger("tabpilot.review")
CAPACITY = 100_000  # rows waiting for the router (a bound on memory); beyond it, dropped


@dataclass(frozen=True)
class Route:
    endpoint: str
    flow: str
    below: float
    margin: bool = False
    audit_percent: float = 0.0


def set_route(store: Store, route: Route) -> Route:
    """Create or replace an endpoint's route, after checking that it can work."""
    if not 0 < route.below <= 1:
        raise TabpilotError(f"--below must be a probability in (0, 1]; got {route.below}")
    if not 0 <= route.audit_percent <= 100:
        raise TabpilotError(f"--audit-percent must be between 0 and 100; got "
                            f"{route.audit_percent}")
    load_flow(store, route.flow)
    endpoint = store.get_endpoint(route.endpoint)
    metadata = json.loads((Path(endpoint.model_dir) / "metadata.json").read_text())
    if not metadata.get("classes"):
        raise TabpilotError(f"endpoint {route.endpoint} serves a regression model: routing "
                            "by confidence needs class probabilities")
    spec = asdict(route)
    if store.find_resource(ROUTE, route.endpoint) is None:
        store.add_resource(ROUTE, route.endpoint, spec, "Active")
    else:
        store.update_resource(ROUTE, route.endpoint, spec=spec, status="Active")
    return route


def remove_route(store: Store, endpoint: str) -> None:
    if store.find_resource(ROUTE, endpoint) is None:
        raise NotFoundError(f"endpoint {endpoint} has no review route")
    store.delete_resource(ROUTE, endpoint)


def routes(store: Store) -> dict[str, Route]:
    return {r.name: Route(**r.spec) for r in store.list_resources(ROUTE)}


def doubt(probabilities: np.ndarray, margin: bool) -> np.ndarray:
    """Per row: the top probability, or the gap between the top two (`margin`)."""
    ordered = np.sort(probabilities, axis=1)
    if margin:
        return ordered[:, -1] - ordered[:, -2]
    return ordered[:, -1]


def loop_key(endpoint: str, event: str, row: int) -> str:
    return hashlib.sha256(f"{endpoint}\n{event}\n{row}".encode()).hexdigest()


def audited(key: str, percent: float) -> bool:
    """A reproducible draw with probability `percent` / 100."""
    return int(key[:12], 16) / float(16 ** 12) * 100 < percent


def select(route: Route, probabilities: np.ndarray, event: str) -> list[tuple[int, str]]:
    """(row, reason) for the rows to review."""
    scores = doubt(probabilities, route.margin)
    chosen = []
    for i, score in enumerate(scores):
        if score < route.below:
            chosen.append((i, "below-threshold"))
        elif route.audit_percent and audited(loop_key(route.endpoint, event, i),
                                             route.audit_percent):
            chosen.append((i, "audit"))
    return chosen


class Router:
    """The queue between the serving path and the review desk, and its one worker."""

    def __init__(self, desk: ReviewDesk, store: Store, refresh_seconds: float = 1.0,
                 capacity: int = CAPACITY) -> None:
        self.desk, self.store = desk, store
        self.refresh_seconds = refresh_seconds
        self.capacity = capacity
        self._queue: queue.Queue[tuple[str, Any, pd.DataFrame, str]] = queue.Queue()
        self._rows = 0  # rows on the queue
        self._count = threading.Lock()
        self._routes: dict[str, Route] = {}
        self._targets: dict[tuple[str, int], str | None] = {}  # (endpoint, model) -> target
        self.processed = self.dropped = self.started_loops = 0

    def tap(self, endpoint: str, model: Any, frame: pd.DataFrame, event: str) -> None:
        """Called on the request path after a prediction: a dict lookup and a put."""
        if endpoint not in self._routes:
            return
        with self._count:
            full = self._rows + len(frame) > self.capacity
            if not full:
                self._rows += len(frame)
            else:
                self.dropped += 1
        if full:
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("review routing is behind: %d requests not sent to review",
                            self.dropped)
            return
        self._queue.put_nowait((endpoint, model, frame, event))

    def run(self, stop: threading.Event) -> None:
        """The worker: route queued predictions until `stop` is set (the server's
        background-work contract, serving/app.py)."""
        self._refresh()
        while not stop.is_set():
            try:
                item = self._queue.get(timeout=self.refresh_seconds)
            except queue.Empty:
                self._refresh()
                continue
            try:
                self._route(*item)
            except Exception:  # one bad item must not stop routing
                log.exception("routing a prediction of %s to review failed", item[0])
            with self._count:
                self._rows -= len(item[2])
            self.processed += 1

    def _refresh(self) -> None:
        try:
            self._routes = routes(self.store)
        except Exception:  # keep the last known routes
            log.exception("reading review routes failed")

    def _target(self, endpoint: str, model: Any) -> str | None:
        """The label column's name: the model's, else its job's (ensembles and stacks
        do not record it)."""
        if model.metadata.get("target"):
            return str(model.metadata["target"])
        key = (endpoint, id(model))
        if key not in self._targets:
            try:
                job = self.store.get_endpoint(endpoint).job
                self._targets[key] = self.store.get_job(job).target if job else None
            except NotFoundError:
                self._targets[key] = None
        return self._targets[key]

    def _route(self, endpoint: str, model: Any, frame: pd.DataFrame, event: str) -> None:
        route = self._routes.get(endpoint)
        if route is None or model.classes is None:
            return
        proba = np.asarray(model.predictor.predict_proba(frame).to_numpy(), dtype=float)
        chosen_index = model.predictor.labels_from_index(proba)
        classes = [_plain(c) for c in model.classes]
        target = self._target(endpoint, model)
        for i, reason in select(route, proba, event):
            content = {
                "endpointName": endpoint, "inferenceId": event, "rowIndex": i,
                "rowsInRequest": len(frame), "reason": reason, "target": target,
                "row": {str(k): _plain(v) for k, v in frame.iloc[i].items()},
                "prediction": classes[int(chosen_index[i])],
                "probabilities": {str(c): float(p) for c, p in zip(classes, proba[i], strict=True)},
                "labels": [str(c) for c in classes],
            }
            name = "auto-" + loop_key(endpoint, event, i)[:40]
            try:
                self.desk.start(name, route.flow, json.dumps(content))
                self.started_loops += 1
            except ResourceExistsError:  # the same inference id again
                continue


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value
