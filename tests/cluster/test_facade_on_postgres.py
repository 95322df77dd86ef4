"""The SageMaker facade on a PostgreSQL store: `tabpilot serve` opens it from
$TABPILOT_STORE, hands it to the job worker process it starts, and a second store opened
elsewhere (another server, another machine) sees the job and its candidates."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))
sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))
from apilib import KEY_ID, SECRET, Api, job_request, start_api  # noqa: E402
from servinglib import wait_until  # noqa: E402

from tabpilot.settings import STORE_ENV  # noqa: E402
from tabpilot.store import Store  # noqa: E402

pytestmark = pytest.mark.cluster


def test_a_job_made_through_the_api_runs_in_a_worker_on_the_shared_store(
        tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STORE_ENV, postgres_url)
    server, root, workspace = start_api(tmp_path, {KEY_ID: SECRET})
    try:
        sm = Api(server, root, workspace).client()
        sm.create_auto_ml_job_v2(**job_request("pg-api", seconds=20, candidates=3))
        def status() -> str:
            return sm.describe_auto_ml_job_v2(AutoMLJobName="pg-api")["AutoMLJobStatus"]

        wait_until(lambda: status() in ("Completed", "Failed", "Stopped"), 240,
                   "the job to end", every=0.5)
        assert status() == "Completed"
    finally:
        server.__exit__()
    assert not (workspace / "tabpilot.db").exists()
    monkeypatch.delenv(STORE_ENV)
    elsewhere = Store.for_workspace(tmp_path / "elsewhere", url=postgres_url)
    job = elsewhere.get_job("pg-api")
    assert job.status == "Completed" and job.host  # the worker recorded where it ran
    assert any(c.status == "Completed" for c in elsewhere.list_candidates("pg-api"))
    elsewhere.engine.dispose()
