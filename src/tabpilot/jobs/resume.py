"""Resume a job that ended Stopped or Failed (an error, or its process died).

The candidates that finished are kept; the search starts again from them (a fresh Optuna
study told every finished trial, so TPE goes on where it was and the portfolio skips what
was tried), with a new time limit; the final phases (stack, ensemble, refit, reports) then
run as in any job, and the job ends as any job does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from tabpilot.config import JobRequest
from tabpilot.errors import JobStateError
from tabpilot.execution import TrialResult
from tabpilot.jobs import status as st
from tabpilot.jobs.runner import JobRunner, Progress
from tabpilot.jobs.trials import Previous
from tabpilot.jobs.views import check_alive
from tabpilot.reports.datafiles import locate
from tabpilot.search import Finished
from tabpilot.store import CandidateRow, JobRow, Store

log = logging.getLogger("tabpilot.jobs.resume")

SEARCHED = ("portfolio", "tpe")  # candidates the search proposed (not promotions, level 2)
MIN_LEFT_SHARE = 0.25  # less of the limit left than this: the whole limit again


def resume(workspace: Path, name: str, time_limit: float | None = None,
           data: str | Path | pd.DataFrame | None = None, store: Store | None = None,
           on_progress: Callable[[Progress], None] | None = None) -> str:
    """Run a Stopped or Failed job on from its finished candidates; returns its name.

    `time_limit`: seconds for this run (default: `default_time_limit`); `data`: the
    training table, when the one the job recorded is gone."""
    store = store or Store.for_workspace(workspace)
    job = check_alive(store, store.get_job(name))
    if job.status in st.ACTIVE:
        raise JobStateError(f"job {name!r} is {job.status}: it is still running; wait for it "
                            f"to end, or stop it with `tabpilot stop {name}`, then resume it")
    if job.status not in (st.FAILED, st.STOPPED):
        raise JobStateError(f"job {name!r} is {job.status}; only a Stopped or Failed job can "
                            "be resumed")
    recorded = _recorded_inputs(job)
    fields: dict[str, Any] = dict(job.request, time_limit=time_limit or default_time_limit(job),
                                  name=name)
    for key in ("validation_data", "feature_types"):  # as resolved when the job started
        where = locate(Path(job.job_dir), recorded, key,
                       fix=f"put it back at {recorded.get(key)}")
        if where:
            fields[key] = where
    request = JobRequest.build(**fields)
    source = data if data is not None else _training_data(job, recorded)
    log.info("resuming job %s for %gs", name, request.time_limit)
    runner = JobRunner(request, workspace, store, on_progress=on_progress,
                       previous=previous_run(store, name))
    return runner.run(source)


def default_time_limit(job: JobRow) -> float:
    """The time the job had left, or its whole limit again when under a quarter was left."""
    limit = float(job.request.get("time_limit") or 300.0)
    used = (job.stats or {}).get("seconds")
    if used is None and job.ended is not None:
        used = job.ended - job.created
    left = limit - float(used or 0.0)
    return left if left >= MIN_LEFT_SHARE * limit else limit


def previous_run(store: Store, name: str) -> Previous:
    """What the job's earlier runs leave to this one."""
    rows = store.list_candidates(name)
    metrics = store.metrics(name)
    history = [Finished(r.family, dict(r.params),
                        r.objective if r.status == st.CANDIDATE_COMPLETED else None)
               for r in rows if r.source in SEARCHED
               and r.status in (st.CANDIDATE_COMPLETED, st.CANDIDATE_FAILED)]
    results = {r.name: _result(r, metrics.get(r.name, {}).get("validation", {}))
               for r in rows if r.source in (*SEARCHED, "promoted")
               and r.status == st.CANDIDATE_COMPLETED and r.artifact_dir
               and r.trained_on != "train+holdout"}  # refit already: not to refit again
    return Previous(history, 1 + max((r.number for r in rows), default=-1), results)


def _result(row: CandidateRow, metrics: dict[str, Any]) -> TrialResult:
    """A completed candidate as its trial reported it (what a refit of it needs)."""
    meta_path = Path(row.artifact_dir or "") / "metadata.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    sample = row.trained_on.removesuffix("k-sample")
    return TrialResult(
        row.name, st.CANDIDATE_COMPLETED, objective=row.objective, metrics=dict(metrics),
        threshold=row.threshold, fit_seconds=row.fit_seconds or 0.0,
        latency_ms_p50=row.latency_ms_p50, throughput_rows_s=row.throughput_rows_s,
        model_bytes=row.model_bytes, artifact_dir=row.artifact_dir,
        details={"infos": meta.get("fits", []),
                 "train_rows": int(sample) * 1000 if sample.isdigit() else None})


def _recorded_inputs(job: JobRow) -> dict[str, Any]:
    path = Path(job.job_dir) / "job.json"
    if not path.is_file():
        raise JobStateError(f"job {job.name!r} ended before it recorded its data "
                            f"({job.failure_reason or job.status}); start it again with "
                            "`tabpilot run`")
    return json.loads(path.read_text()).get("data") or {}


def _training_data(job: JobRow, recorded: dict[str, Any]) -> str | pd.DataFrame:
    """The table the job trained on: where it read it, else the copy it kept in its folder
    (a DataFrame's, read back from Parquet; never a pickle)."""
    where = locate(Path(job.job_dir), recorded, "input",
                   fix="pass the table again with --data (in Python: resume(data=...))")
    assert where is not None  # locate raises for a missing training table
    if recorded.get("input_is_copy") and where.endswith(".parquet"):
        return pd.read_parquet(where)
    return where
