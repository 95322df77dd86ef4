"""Lineage from the workspace's own store: dataset -> job -> candidate -> endpoint ->
monitoring schedule -> execution (and the MLflow run a job was logged to).

Shaped like SageMaker's QueryLineage answer: `Vertices` (an `Id`, a `Type`, the name and
status, a few facts) and `Edges` (`SourceId`, `DestinationId`, `AssociationType`:
ContributedTo, Produced, AssociatedWith). Everything is read from rows that exist for
their own sake (jobs, candidates, endpoints, the SageMaker-API resources); nothing is
written to keep lineage. Monitoring schedules and executions are read by kind and by the
spec fields the SageMaker API names (`EndpointName`, `MonitoringScheduleName`, ...)
wherever in the spec they sit, so a workspace without them, or with older shapes, still
answers.

Which model an endpoint serves: its row's job and candidate when the deploy recorded them,
else the candidate whose model directory it serves, else the job and candidate the
model's own metadata.json names (a model deployed through the SageMaker API).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabpilot.errors import ConfigError, NotFoundError
from tabpilot.store import Store
from tabpilot.tracking.dataset import job_dataset

SCHEDULE = "monitoring-schedule"
EXECUTION = "monitoring-execution"
DEFINITIONS = ("data-quality-job-definition", "model-quality-job-definition")
MLFLOW_RUN = "mlflow-run"  # tracking.mlflow.RUN_KIND, not imported: that module needs pandas
KINDS = ("job", "candidate", "endpoint", "schedule")


@dataclass
class Graph:
    vertices: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: list[dict[str, str]] = field(default_factory=list)

    def add(self, vid: str, type_: str, name: str, **facts: Any) -> str:
        if vid not in self.vertices:
            self.vertices[vid] = {"Id": vid, "Type": type_, "Name": name,
                                  **{k: v for k, v in facts.items() if v is not None}}
        return vid

    def link(self, source: str, destination: str, association: str) -> None:
        edge = {"SourceId": source, "DestinationId": destination,
                "AssociationType": association}
        if edge not in self.edges:
            self.edges.append(edge)


def lineage(store: Store, name: str, kind: str | None = None) -> dict[str, Any]:
    """The lineage of a job, candidate (`JOB/CANDIDATE`, or a name only one job has),
    endpoint or monitoring schedule named `name`; `kind` picks one when several match."""
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"unknown kind {kind!r}; use one of: {', '.join(KINDS)}")
    found = _resolve(store, name, kind)
    view = _View(store)
    if found[0] == "job":
        view.job_down(found[1], candidates=None)
    elif found[0] == "candidate":
        job, candidate = found[1]
        view.job_down(job, candidates={candidate})
    elif found[0] == "endpoint":
        view.endpoint(found[1], schedules=None)
    else:
        endpoint = _schedule_endpoint(store, found[1])
        if endpoint is not None and _endpoint_row(store, endpoint) is not None:
            view.endpoint(endpoint, schedules={found[1]})
        else:
            view.schedule(found[1], None)
    return {"Query": {"Name": name, "Kind": found[0]},
            "Vertices": list(view.graph.vertices.values()), "Edges": view.graph.edges}


# -- finding what was asked for ----------------------------------------------------------
def _resolve(store: Store, name: str, kind: str | None) -> tuple[str, Any]:
    matches: list[tuple[str, Any]] = []
    if kind in (None, "job") and store.job_exists(name):
        matches.append(("job", name))
    if kind in (None, "endpoint") and _endpoint_row(store, name) is not None:
        matches.append(("endpoint", name))
    if kind in (None, "schedule") and store.find_resource(SCHEDULE, name) is not None:
        matches.append(("schedule", name))
    if kind in (None, "candidate"):
        matches += [("candidate", pair) for pair in _candidates_named(store, name)]
    if not matches:
        what = f"{kind} " if kind else "job, candidate, endpoint or monitoring schedule "
        raise NotFoundError(f"no {what}named {name!r}; `tabpilot list`, `tabpilot endpoints` "
                            "and `tabpilot candidates JOB` show the names")
    if len(matches) > 1:
        job = next((m for m in matches if m[0] == "job"), None)
        if job is not None and _covers(store, name, matches):
            return job  # `deploy churn --endpoint churn`: the job's lineage holds both
        shown = ", ".join(m[0] if m[0] != "candidate" else f"candidate {'/'.join(m[1])}"
                          for m in matches)
        raise ConfigError(f"{name!r} names several things ({shown}); pass --kind, or "
                          "JOB/CANDIDATE for a candidate")
    return matches[0]


def _covers(store: Store, job: str, matches: list[tuple[str, Any]]) -> bool:
    """Whether job `job`'s lineage holds every other thing of that name."""
    view = _View(store)
    view.job_down(job, candidates=None)
    ids = {"endpoint": lambda n: f"endpoint:{n}", "schedule": lambda n: f"{SCHEDULE}:{n}",
           "candidate": lambda pair: f"candidate:{pair[0]}/{pair[1]}",
           "job": lambda n: f"job:{n}"}
    return all(ids[kind](value) in view.graph.vertices for kind, value in matches)


def _candidates_named(store: Store, name: str) -> list[tuple[str, str]]:
    if "/" in name:
        job, candidate = name.split("/", 1)
        if store.job_exists(job) and any(c.name == candidate
                                         for c in store.list_candidates(job)):
            return [(job, candidate)]
        return []
    return [(job.name, name) for job in store.list_jobs()
            if any(c.name == name for c in store.list_candidates(job.name))]


def _endpoint_row(store: Store, name: str) -> Any:
    try:
        return store.get_endpoint(name)
    except NotFoundError:
        return None


# -- reading the store -------------------------------------------------------------------
class _View:
    """Adds what one query reaches to a Graph, walking up and down from it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.graph = Graph()

    def job_down(self, job: str, candidates: set[str] | None) -> None:
        """The job and its upstream; its candidates (all, or those named) and downstream."""
        job_id = self.job(job)
        for row in self.store.list_candidates(job):
            if candidates is None or row.name in candidates:
                self.graph.link(job_id, self.candidate(job, row), "Produced")
        for endpoint in self.store.list_endpoints():
            served = self.served_by(endpoint)
            if served is not None and served[0] == job and (
                    candidates is None or served[1] in candidates):
                self.endpoint(endpoint.name, schedules=None)

    def job(self, job: str) -> str:
        vid = f"job:{job}"
        if vid in self.graph.vertices:
            return vid
        row = self.store.get_job(job)
        self.graph.add(vid, "Job", job, Status=row.status, ProblemType=row.problem_type,
                       ObjectiveMetric=row.metric, BestCandidate=row.best_candidate,
                       JobDir=row.job_dir)
        data = job_dataset(Path(row.job_dir))
        if data["sha256"] or data["source"]:
            key = data["sha256"] or f"unhashed:{data['source']}"
            dataset = self.graph.add(f"dataset:{key}", "Dataset", data["source"] or key,
                                     Sha256=data["sha256"], Source=data["source"],
                                     HashRecorded=data["recorded"])
            self.graph.link(dataset, vid, "ContributedTo")
        run = self.store.find_resource(MLFLOW_RUN, job)
        if run is not None:
            spec = run.spec or {}
            run_id = self.graph.add(f"mlflow-run:{spec.get('RunId')}", "MLflowRun",
                                    str(spec.get("RunId")), TrackingUri=spec.get("TrackingUri"),
                                    Experiment=spec.get("Experiment"),
                                    RegisteredModel=spec.get("RegisteredModel"))
            self.graph.link(vid, run_id, "AssociatedWith")
        return vid

    def candidate(self, job: str, row: Any) -> str:
        return self.graph.add(f"candidate:{job}/{row.name}", "Candidate", row.name, Job=job,
                              Status=row.status, Algorithm=row.algorithm,
                              Objective=row.objective, ModelDir=row.artifact_dir,
                              Best=self.store.get_job(job).best_candidate == row.name)

    def endpoint(self, name: str, schedules: set[str] | None) -> str:
        """The endpoint, what it serves (up to the dataset), its schedules (all, or those
        named) and their executions."""
        row = self.store.get_endpoint(name)
        vid = self.graph.add(f"endpoint:{name}", "Endpoint", name, Status=row.status,
                             Version=row.version, ModelDir=row.model_dir)
        served = self.served_by(row)
        if served is not None:
            job, candidate = served
            self.job(job)
            cand = next(c for c in self.store.list_candidates(job) if c.name == candidate)
            source = self.candidate(job, cand)
            self.graph.link(f"job:{job}", source, "Produced")
            self.graph.link(source, vid, "ContributedTo")
        for schedule in self.store.list_resources(SCHEDULE):
            if (schedules is None or schedule.name in schedules) and \
                    _schedule_endpoint(self.store, schedule.name) == name:
                self.graph.link(vid, self.schedule(schedule.name, schedule), "AssociatedWith")
        return vid

    def schedule(self, name: str, row: Any) -> str:
        row = row or self.store.get_resource(SCHEDULE, name)
        spec = row.spec or {}
        vid = self.graph.add(
            f"{SCHEDULE}:{name}", "MonitoringSchedule", name,
            Status=row.status or _find(spec, "MonitoringScheduleStatus"),
            MonitoringType=_find(spec, "MonitoringType"),
            ScheduleExpression=_find(spec, "ScheduleExpression"),
            JobDefinitionName=_find(spec, "MonitoringJobDefinitionName"))
        for execution in self.store.list_resources(EXECUTION):
            exec_spec = execution.spec or {}
            if _find(exec_spec, "MonitoringScheduleName") != name:
                continue
            eid = self.graph.add(
                f"{EXECUTION}:{execution.name}", "MonitoringExecution", execution.name,
                Status=execution.status or _find(exec_spec, "MonitoringExecutionStatus"),
                ScheduledTime=_find(exec_spec, "ScheduledTime"),
                Output=_find(exec_spec, "ProcessingJobArn") or _find(exec_spec, "Output"))
            self.graph.link(vid, eid, "Produced")
        return vid

    def served_by(self, endpoint: Any) -> tuple[str, str] | None:
        """(job, candidate) of the model an endpoint serves, or None (a model from
        elsewhere, or its job deleted)."""
        if endpoint.job and endpoint.candidate and self._has(endpoint.job, endpoint.candidate):
            return endpoint.job, endpoint.candidate
        model_dir = _resolved(endpoint.model_dir)
        for job in self.store.list_jobs():
            for row in self.store.list_candidates(job.name):
                if row.artifact_dir and _resolved(row.artifact_dir) == model_dir:
                    return job.name, row.name
        try:
            meta = json.loads((Path(endpoint.model_dir) / "metadata.json").read_text())
        except (OSError, ValueError, TypeError):
            return None
        job, candidate = meta.get("job"), meta.get("candidate")
        if job and candidate and self._has(job, candidate):
            return job, candidate
        return None

    def _has(self, job: str, candidate: str) -> bool:
        return self.store.job_exists(job) and any(
            c.name == candidate for c in self.store.list_candidates(job))


def _schedule_endpoint(store: Store, schedule: str) -> str | None:
    """The endpoint a schedule watches: named in its spec, or in its job definition's."""
    row = store.find_resource(SCHEDULE, schedule)
    if row is None:
        return None
    spec = row.spec or {}
    endpoint = _find(spec, "EndpointName")
    if endpoint:
        return str(endpoint)
    definition = _find(spec, "MonitoringJobDefinitionName")
    for kind in DEFINITIONS:
        found = store.find_resource(kind, str(definition)) if definition else None
        if found is not None and _find(found.spec or {}, "EndpointName"):
            return str(_find(found.spec, "EndpointName"))
    return None


def _find(spec: Any, key: str) -> Any:
    """The first value of `key` anywhere in a nested spec (breadth first), or None."""
    queue = [spec]
    while queue:
        item = queue.pop(0)
        if isinstance(item, dict):
            if item.get(key) not in (None, ""):
                return item[key]
            queue.extend(item.values())
        elif isinstance(item, list):
            queue.extend(item)
    return None


def _resolved(path: str | None) -> Path | None:
    try:
        return Path(path).resolve() if path else None
    except (OSError, RuntimeError):
        return None
