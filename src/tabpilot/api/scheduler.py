"""The monitoring scheduler inside `tabpilot serve`, and the execution a worker runs.

Every TABPILOT_MONITOR_POLL_SECONDS (default 30) the scheduler reads the schedules from
the store; for each Scheduled one whose latest slot is due (`monitor/schedule.py`) it adds
a `monitoring-execution` row named after the schedule and the slot, then starts
`python -m tabpilot.api.worker monitoring NAME`. The row is the lock: adding it fails when
the slot has an execution already, so a slot runs once however often the server restarts,
and two servers on one workspace never both run it. State lives in the store only, so a
restarted server picks up where the last one stopped.

An execution goes Pending -> InProgress -> Completed | CompletedWithViolations | Failed
(with FailureReason). A worker that dies without a result is marked Failed on a later scan.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tabpilot.api.context import ApiContext
from tabpilot.api.hosting import upload_captures
from tabpilot.api.locations import join
from tabpilot.api.monitoring import (
    BASELINE_FIELD,
    EXECUTION,
    GROUND_TRUTH_FIELD,
    OUTPUT_FIELD,
    RUNNING,
    SCHEDULE,
    STATISTICS_FIELD,
    default_baseline,
    executions,
)
from tabpilot.errors import NotFoundError, ResourceExistsError, TabpilotError
from tabpilot.monitor.schedule import latest_due, parse_schedule, window

log = logging.getLogger("tabpilot.api.scheduler")
POLL_ENV = "TABPILOT_MONITOR_POLL_SECONDS"
LOST_AFTER = 300.0  # seconds a Pending row may wait for its worker to start


def poll_seconds() -> float:
    try:
        return max(0.05, float(os.environ.get(POLL_ENV, "30")))
    except ValueError:
        log.warning("%s=%r is not a number of seconds; polling every 30 s", POLL_ENV,
                    os.environ.get(POLL_ENV))
        return 30.0


def execution_name(schedule: str, incarnation: str, slot: datetime) -> str:
    """One name per (schedule, slot), shaped like SageMaker's monitoring processing jobs."""
    digest = hashlib.sha1(f"{schedule}/{incarnation}".encode()).hexdigest()[:16]
    return f"model-monitoring-{slot.astimezone(UTC):%Y%m%d%H%M%S}-{digest}"


class Scheduler:
    """Polls the store and starts the executions that are due."""

    def __init__(self, ctx: ApiContext, poll: float | None = None) -> None:
        self.ctx = ctx
        self.poll = poll if poll is not None else poll_seconds()

    def run(self, stop: threading.Event) -> None:
        """Scan every `poll` seconds, the first one `poll` seconds after the server starts,
        until `stop` is set (the server's lifespan). A slot runs up to one poll late."""
        while not stop.wait(self.poll):
            try:
                self.scan()
            except Exception:  # keep scheduling: the next scan may succeed
                log.exception("scanning the monitoring schedules failed")
            try:  # captures bound for remote S3 (api/hosting.py)
                upload_captures(self.ctx)
            except Exception:
                log.exception("copying captured requests to S3 failed")

    def scan(self, now: datetime | None = None) -> list[str]:
        """Start what is due at `now`; the names of the executions started."""
        now = now or datetime.now(UTC)
        self._reap()
        busy = {r.spec["MonitoringScheduleName"] for r in executions(self.ctx)
                if r.status in RUNNING}
        started = []
        for row in self.ctx.store.list_resources(SCHEDULE):
            # as SageMaker: a schedule's next slot waits while its last execution runs
            if row.status != "Scheduled" or row.name in busy:
                continue
            name = self._due(row, now)
            if name is not None:
                started.append(name)
        return started

    def _due(self, row, now: datetime) -> str | None:
        spec = row.spec
        timing = spec["config"]["ScheduleConfig"]
        schedule = parse_schedule(timing["ScheduleExpression"], timing.get("DataAnalysisStartTime"),
                                  timing.get("DataAnalysisEndTime"))
        slot = latest_due(schedule, now, datetime.fromtimestamp(spec["Since"], UTC))
        if slot is None:
            return None
        name = execution_name(row.name, spec["Incarnation"], slot)
        record = {"MonitoringScheduleName": row.name, "Incarnation": spec["Incarnation"],
                  "EndpointName": spec["EndpointName"], "MonitoringType": spec["MonitoringType"],
                  "MonitoringJobDefinitionName": spec.get("MonitoringJobDefinitionName"),
                  "ScheduleExpression": timing["ScheduleExpression"],
                  "ScheduledTime": slot.timestamp(), "job": spec["job"], "timing": timing}
        try:
            self.ctx.store.add_resource(EXECUTION, name, record, status="Pending")
        except ResourceExistsError:
            return None  # this slot ran already
        try:
            self.ctx.launch("monitoring", name)  # the worker records its pid in the row
        except OSError as exc:
            self.ctx.store.update_resource(EXECUTION, name, status="Failed", ended=time.time(),
                                           failure_reason=f"cannot start the worker: {exc}")
            return None
        log.info("monitoring schedule %s: execution %s for %s", row.name, name, slot.isoformat())
        return name

    def _reap(self) -> None:
        """Fail executions whose worker is gone (killed, or the machine restarted)."""
        for row in self.ctx.store.list_resources(EXECUTION):
            if row.status not in RUNNING:
                continue
            pid = row.spec.get("pid")
            if pid is None and time.time() - row.created < LOST_AFTER:
                continue
            if row.spec.get("host", socket.gethostname()) != socket.gethostname():
                continue  # a pid on another machine (a shared store): its server reaps it
            if pid is not None and _alive(pid):
                continue
            self.ctx.store.update_resource(
                EXECUTION, row.name, status="Failed", ended=time.time(),
                failure_reason="the monitoring worker exited without a result; see "
                               f"logs/monitoring-{row.name}.log in the workspace")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead; on Linux its state says so
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return True


# -- the worker's side ------------------------------------------------------------------
def run_monitoring(ctx: ApiContext, name: str) -> None:
    """`python -m tabpilot.api.worker monitoring NAME`: run one execution, record its end."""
    store = ctx.store
    spec = {**store.get_resource(EXECUTION, name).spec, "pid": os.getpid(),
            "host": socket.gethostname()}
    store.update_resource(EXECUTION, name, status="InProgress", spec=spec)
    try:
        status, output = _execute(ctx, spec)
    except Exception as exc:
        if not isinstance(exc, TabpilotError):
            log.error("monitoring execution %s failed: %s", name, traceback.format_exc())
        text = str(exc).strip().splitlines()
        store.update_resource(EXECUTION, name, status="Failed", ended=time.time(),
                              failure_reason=(text[0] if text else type(exc).__name__)[:1000])
        return
    store.update_resource(EXECUTION, name, status=status, ended=time.time(),
                          spec={**spec, "Output": output})


def _execute(ctx: ApiContext, spec: dict[str, Any]) -> tuple[str, str]:
    job, timing = spec["job"], spec["timing"]
    schedule = parse_schedule(timing["ScheduleExpression"], timing.get("DataAnalysisStartTime"),
                              timing.get("DataAnalysisEndTime"))
    slot = datetime.fromtimestamp(spec["ScheduledTime"], UTC)
    start, end = window(schedule, slot)
    endpoint = job["EndpointName"]
    offsets = job.get("EndpointInput") or {}
    if offsets.get("StartTimeOffset") or offsets.get("EndTimeOffset"):  # ground truth's delay
        from tabpilot.monitor.capture import parse_time

        start = parse_time(offsets.get("StartTimeOffset") or "-PT1H", slot, "StartTimeOffset")
        end = parse_time(offsets.get("EndTimeOffset") or "-PT0H", slot, "EndTimeOffset")
    # SageMaker's layout: <output>/<endpoint>/<schedule>/YYYY/MM/DD/HH
    dest = join(job["Output"], endpoint, spec["MonitoringScheduleName"],
                slot.strftime("%Y/%m/%d/%H"))
    remote = ctx.locations.is_remote_output(dest, OUTPUT_FIELD)
    local = ctx.workspace / "monitoring" / ".outgoing" / spec["MonitoringScheduleName"] \
        if remote else Path(ctx.locations.resolve_output(dest, OUTPUT_FIELD))
    if job["MonitoringType"] == "ModelQuality":
        status = _model_quality(ctx, job, slot, start, end, local)
    else:
        from tabpilot.monitor.execution import run_execution

        baseline = _baseline(ctx, job)
        outcome = run_execution(endpoint, baseline, workspace=ctx.workspace, now=slot,
                                start=start, end=end, output=local)
        status = outcome.execution.status
    if remote:
        ctx.locations.publish(local, dest, OUTPUT_FIELD)
    return status, dest


def _model_quality(ctx: ApiContext, job: dict[str, Any], slot: datetime, start: datetime,
                   end: datetime, output: Path) -> str:
    try:
        from tabpilot.monitor.quality import run_model_quality
    except ImportError:
        raise TabpilotError("model-quality monitoring is not available in this tabpilot "
                            "(tabpilot.monitor.quality is missing)") from None
    truth = ctx.locations.resolve(job["GroundTruth"], GROUND_TRUTH_FIELD)
    constraints = ctx.locations.resolve(job["Constraints"], BASELINE_FIELD) \
        if job.get("Constraints") else None
    given = job.get("EndpointInput") or {}
    outcome = run_model_quality(
        job["EndpointName"], workspace=ctx.workspace, problem_type=job["ProblemType"],
        ground_truth=Path(truth), baseline_constraints=Path(constraints) if constraints else None,
        start=start, end=end, now=slot, output=output,
        inference_attribute=given.get("InferenceAttribute"),
        probability_attribute=given.get("ProbabilityAttribute"),
        probability_threshold=given.get("ProbabilityThresholdAttribute"))
    return outcome.execution.status


def _baseline(ctx: ApiContext, job: dict[str, Any]):
    """The job's baseline: the files its BaselineConfig names (a file, or a folder holding
    constraints.json / statistics.json), else the endpoint's job's `<job dir>/monitoring/`,
    built from the training data on first use."""
    from tabpilot.monitor import CONSTRAINTS, SAMPLE, STATISTICS
    from tabpilot.monitor.baseline import Baseline, job_baseline, load_baseline

    if not job.get("Constraints"):
        folder = default_baseline(ctx, job["EndpointName"])
        if folder is None:
            raise NotFoundError(f"endpoint {job['EndpointName']!r} serves no job's model; give "
                                "the schedule a BaselineConfig")
        if not (folder / STATISTICS).is_file():
            return job_baseline(folder.parent)
        return load_baseline(folder)
    constraints = _located(ctx, job["Constraints"], BASELINE_FIELD, CONSTRAINTS)
    statistics = _located(ctx, job["Statistics"], STATISTICS_FIELD, STATISTICS) \
        if job.get("Statistics") else constraints.with_name(STATISTICS)
    if constraints.parent == statistics.parent and constraints.name == CONSTRAINTS \
            and statistics.name == STATISTICS:
        return load_baseline(constraints.parent)
    import pandas as pd

    loaded = [json.loads(p.read_text()) for p in (statistics, constraints)]
    sample_path = statistics.with_name(SAMPLE)
    sample = pd.read_parquet(sample_path) if sample_path.is_file() else pd.DataFrame()
    return Baseline(constraints.parent, loaded[0], loaded[1], sample)


def _located(ctx: ApiContext, uri: str, field: str, default_name: str) -> Path:
    where = ctx.locations.resolve(uri, field)
    if "://" in where:
        return _fetched(ctx, where, uri, field, default_name)
    path = Path(where)
    path = path / default_name if path.is_dir() else path
    if not path.is_file():
        raise NotFoundError(f"{field}: {uri} does not exist")
    return path


def _fetched(ctx: ApiContext, where: str, uri: str, field: str, default_name: str) -> Path:
    """A baseline file in remote S3 (what `DefaultModelMonitor.suggest_baseline` leaves
    there), copied under <workspace>/monitoring/.incoming/, one folder per S3 folder, with
    the baseline's data sample beside it when there is one."""
    import fsspec

    from tabpilot.monitor import SAMPLE

    fs, path = fsspec.core.url_to_fs(where)
    if not fs.isfile(path):
        path = f"{path.rstrip('/')}/{default_name}"
        if not fs.isfile(path):
            raise NotFoundError(f"{field}: {uri} does not exist")
    parent, name = path.rsplit("/", 1)
    cache = ctx.workspace / "monitoring" / ".incoming" / \
        hashlib.sha1(parent.encode()).hexdigest()[:16]
    cache.mkdir(parents=True, exist_ok=True)
    fs.get_file(path, str(cache / name))
    if fs.isfile(f"{parent}/{SAMPLE}"):
        fs.get_file(f"{parent}/{SAMPLE}", str(cache / SAMPLE))
    return cache / name
