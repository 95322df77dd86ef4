"""The Studio in a test: a real `server_app` with the SageMaker API and the Studio
installed exactly as `tabpilot serve` does, driven by FastAPI's TestClient, and jobs
written through the store's own API (the rows a running job writes)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tabpilot import ui
from tabpilot.api.app import install
from tabpilot.serving.app import ServerSettings, server_app
from tabpilot.store import Store

LOOPBACK = "http://127.0.0.1:8080"


def studio_app(workspace: Path, root_path: str = "", **settings: Any):
    """`tabpilot serve`'s application (without its lifespan: no background threads)."""
    config = ServerSettings(workspace=workspace, **settings)
    app = server_app(config)
    ctx = install(app, workspace, credentials=settings.get("credentials"),
                  token=settings.get("token"))
    ui.install(app, ctx, root_path=root_path)
    return app


def client(app, base_url: str = LOOPBACK, **kwargs: Any) -> TestClient:
    return TestClient(app, base_url=base_url, follow_redirects=False, **kwargs)


def csrf(http: TestClient, page: str = "/studio/login") -> str:
    """The CSRF token a page hands this client (its nonce cookie is kept by the client)."""
    html = http.get(page).text
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


def add_job(store: Store, name: str, status: str = "InProgress",
            secondary: str = "ModelTuning", n: int = 0, failed: int = 0, *,
            metric: str = "F1", problem_type: str = "binary", time_limit: float = 60,
            stats: dict | None = None, failure_reason: str | None = None,
            best: bool = True, started: float | None = None) -> None:
    """A job row and `n` completed + `failed` failed candidates, as the runner writes them."""
    now = time.time()
    started = now - 30 if started is None else started
    store.create_job(name=name, status="InProgress", secondary_status="Starting", target="y",
                     input_uri="/data/train.csv", problem_type=problem_type, metric=metric,
                     mode="hpo", request={"time_limit": time_limit}, job_dir=str(
                         Path(store.root or "/tmp") / "jobs" / name))
    algorithms = ("lightgbm", "linear", "xgboost", "random_forest")
    for i in range(n + failed):
        algorithm = algorithms[i % len(algorithms)]
        ok = i < n
        store.add_candidate(job=name, name=f"{algorithm}-{i:03d}", number=i, algorithm=algorithm,
                            family=algorithm, params={}, status="Completed" if ok else "Failed",
                            trained_on="train")
        store.update_candidate(
            name, f"{algorithm}-{i:03d}",
            metrics={metric: 0.6 + 0.3 * ((i * 37) % 101) / 100} if ok else None,
            objective=0.6 + 0.3 * ((i * 37) % 101) / 100 if ok else None,
            latency_ms_p50=0.05 + ((i * 53) % 97) / 10 if ok else None,
            fit_seconds=0.5 + i % 7, model_bytes=1000 + 10 * i, ended=started + 1 + i * 0.1,
            failure_reason=None if ok else "the trial ran out of memory")
    fields: dict[str, Any] = {"status": status, "secondary_status": secondary,
                              "stats": stats or {}, "heartbeat": now}
    if status not in ("InProgress", "Stopping"):
        fields["ended"] = now
    if failure_reason:
        fields["failure_reason"] = failure_reason
    if best and n:
        board = [c for c in store.list_candidates(name) if c.status == "Completed"]
        fields["best_candidate"] = max(board, key=lambda c: c.objective).name
    store.update_job(name, **fields)
    with store.session() as s:  # the row's creation time, as if it started `started`
        from tabpilot.store.metadata import JobRow
        s.get(JobRow, name).created = started
