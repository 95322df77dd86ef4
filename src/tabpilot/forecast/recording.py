"""A forecasting job in the store: its job row and one candidate row per backtested model.

A forecasting job is a job like a tabular one: `tabpilot list`, `describe`, `candidates`,
`deploy` and the SageMaker facade read it from the same rows (problem type
`TimeSeriesForecasting`, the objective as the job's metric). Rows are written as the job
goes (the job row when it starts, each candidate when its backtest is scored, the
ensemble and the best candidate at the end), so a `describe` in another terminal, or the
API, sees progress; a heartbeat thread keeps the row alive as for any job. With an
artifact store that is not the workspace (`--artifacts s3://...`), the job folder and its
model are published (`jobs/publishing.py`) before the final status, as a tabular job's.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tabpilot.artifacts.store import ArtifactStore, ArtifactStoreError
from tabpilot.forecast.model import PROBLEM_TYPE
from tabpilot.forecast.request import ForecastRequest
from tabpilot.jobs import status as st
from tabpilot.store import Store

FAMILY = "forecast"


class JobRecord:
    """The rows of one forecasting job. `adopt`: the row exists already (the SageMaker
    facade made it before starting the worker), take it over instead of creating it."""

    def __init__(self, store: Store, name: str, request: ForecastRequest, folder: Path,
                 input_uri: str, adopt: bool = False,
                 artifacts: ArtifactStore | None = None) -> None:
        from tabpilot.jobs.heartbeat import Heartbeat

        self.store, self.name, self.request = store, name, request
        self.folder, self.input_uri, self.adopt = folder, input_uri, adopt
        self.artifacts = artifacts  # where the ended job is published (None: nowhere)
        self.heartbeat = Heartbeat(store, name)
        self.number = 0

    def start(self) -> None:
        fields = dict(status=st.IN_PROGRESS, secondary_status=st.TRAINING_MODELS,
                      problem_type=PROBLEM_TYPE, metric=self.request.objective, mode="auto",
                      request=self.request.model_dump(mode="json"), job_dir=str(self.folder),
                      target=self.request.target)
        if self.adopt:
            self.store.update_job(self.name, **fields)
        else:
            self.store.create_job(name=self.name, input_uri=self.input_uri, pid=None, **fields)
        self.heartbeat.start()

    def stopping(self) -> bool:
        """Whether StopAutoMLJob (or `tabpilot stop`) asked this job to stop."""
        return self.store.get_job(self.name).status == st.STOPPING

    def candidate(self, name: str, scores: dict[str, float], fit_seconds: float,
                  params: dict[str, Any] | None = None, model_dir: Path | None = None) -> None:
        """A candidate whose backtest was scored: its row and its metrics, every one of
        them averaged over the windows (Validation, as Autopilot files backtest metrics)."""
        self.number += 1
        self.store.add_candidate(
            job=self.name, name=name, number=self.number, algorithm=name, family=FAMILY,
            params=params or {}, source=FAMILY, status="Completed",
            objective=scores[self.request.objective], fit_seconds=fit_seconds,
            model_bytes=_bytes(model_dir), artifact_dir=str(model_dir) if model_dir else None,
            trained_on="refit-full" if model_dir else "train")
        self.store.update_candidate(self.name, name, metrics=dict(scores), ended=time.time())

    def finish(self, best: str, seconds: float, notes: list[str], items: int, rows: int,
               stopped: bool, out_of_time: bool) -> None:
        """The job ended: Stopped on request, else Completed (MaxAutoMLJobRuntimeReached
        when the limit left candidates out). Published first: a publish that fails
        raises, and the job ends Failed with the reason instead."""
        self._publish()
        self.heartbeat.stop()
        status = st.STOPPED if stopped else st.COMPLETED
        self.store.update_job(
            self.name, status=status,
            secondary_status=st.MAX_RUNTIME if out_of_time and not stopped else status,
            best_candidate=best,
            ended=time.time(),
            stats={"seconds": round(seconds, 3), "warnings": notes, "items": items,
                   "rows": rows})

    def _publish(self) -> None:
        if self.artifacts is None or self.artifacts.in_place:
            return
        from tabpilot.jobs.publishing import publish_job

        try:  # the folder is workspace/jobs/<job>: its keys are the tabular jobs' keys
            publish_job(self.artifacts, self.folder.parent.parent, self.folder)
        except Exception as exc:
            text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ArtifactStoreError(f"publishing the job to the artifact store "
                                     f"{self.artifacts.url} failed: {text}") from exc

    def fail(self, exc: BaseException) -> None:
        self.heartbeat.stop()
        text = str(exc).strip().splitlines()
        self.store.update_job(self.name, status=st.FAILED, secondary_status=st.FAILED,
                              failure_reason=(text[0] if text else type(exc).__name__)[:1000],
                              ended=time.time())


def _bytes(model_dir: Path | None) -> int | None:
    if model_dir is None:
        return None
    return sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file())
