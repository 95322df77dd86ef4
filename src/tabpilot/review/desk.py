"""Human loops and the review queue: who reviews what, for how long, and when a loop is done.

A loop (a store resource of kind `human-loop`, status = A2I's HumanLoopStatus) asks its
flow's TaskCount distinct reviewers for a label. A reviewer asking for work gets a lease
on the oldest loop that still needs a reviewer they are not already: the lease lasts the
flow's TaskTimeLimitInSeconds, and one that runs out simply stops counting, so the loop is
offered again. An answer needs a live lease. With all answers in, `consensus.decide`
either settles the label (the loop Completes and its outputs are written: `outputs.py`) or
finds a tie, which asks one reviewer more. A loop nobody finishes within the flow's
TaskAvailabilityLifetimeInSeconds Fails.

Every read-modify-write of a loop happens under one lock: the desk lives in the server
process, which alone changes loops (the CLI only reads them).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tabpilot.errors import NotFoundError, ResourceExistsError, TabpilotError
from tabpilot.review.consensus import Verdict, decide
from tabpilot.review.flows import LOOP, Flow, arn, check_name, load_flow
from tabpilot.review.outputs import (
    AuditLog,
    human_answer,
    output_key,
    write_ground_truth,
    write_output,
)
from tabpilot.store import Store
from tabpilot.store.metadata import ResourceRow

IN_PROGRESS, STOPPING = "InProgress", "Stopping"
COMPLETED, FAILED, STOPPED = "Completed", "Failed", "Stopped"
OPEN = (IN_PROGRESS, STOPPING)  # a reviewer holding a lease may still answer


class LeaseError(TabpilotError):
    """An answer for a task the reviewer does not (or no longer) hold."""


@dataclass(frozen=True)
class Task:
    """One item as a reviewer sees it."""

    loop: str
    flow: Flow
    content: dict[str, Any]  # the loop's InputContent, parsed
    until: float  # the lease's end

    @property
    def labels(self) -> list[str]:
        return [str(x) for x in self.content.get("labels") or []]


class ReviewDesk:
    def __init__(self, store: Store, workspace: Path,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.workspace = Path(workspace)
        self.clock = clock
        self.audit = AuditLog(self.workspace / "review" / "audit.jsonl")
        self._lock = threading.Lock()

    # -- loops -------------------------------------------------------------------------
    def start(self, name: str, flow_name: str, input_content: str,
              data_attributes: dict[str, Any] | None = None) -> ResourceRow:
        check_name(name, "human loop")
        flow = load_flow(self.store, flow_name)
        try:
            content = json.loads(input_content)
        except ValueError:
            raise TabpilotError("HumanLoopInput.InputContent must be a JSON string") from None
        if not isinstance(content, dict):
            raise TabpilotError("HumanLoopInput.InputContent must hold a JSON object")
        now = self.clock()
        spec = {"FlowDefinitionName": flow.name, "InputContent": input_content,
                "DataAttributes": data_attributes, "needed": flow.task_count,
                "answers": [], "leases": {}, "expiresAt": now + flow.lifetime_seconds}
        with self._lock:
            if self.store.find_resource(LOOP, name) is not None:
                raise ResourceExistsError(f"a human loop named {name!r} exists already")
            row = self.store.add_resource(LOOP, name, spec, IN_PROGRESS)
        self.audit.record("loop-started", ts=now, loop=name, flow=flow.name,
                          inferenceId=content.get("inferenceId"))
        return row

    def get(self, name: str) -> ResourceRow:
        row = self.store.find_resource(LOOP, name)
        if row is None:
            raise NotFoundError(f"no human loop named {name!r}")
        return row

    def loops(self, flow_name: str | None = None) -> list[ResourceRow]:
        return [r for r in self.store.list_resources(LOOP)
                if flow_name is None or r.spec["FlowDefinitionName"] == flow_name]

    def stop(self, name: str) -> None:
        """As A2I stops a loop: nobody new gets it; a reviewer holding a lease may still
        answer (the loop is Stopping until the last live lease is answered or runs out),
        then it is Stopped."""
        now = self.clock()
        with self._lock:
            row = self.get(name)
            if row.status == IN_PROGRESS:
                live = {w: x for w, x in row.spec["leases"].items() if x["until"] > now}
                self._save(row, {**row.spec, "leases": live}, STOPPING if live else STOPPED)
        self.audit.record("loop-stopped", ts=now, loop=name)

    def delete(self, name: str) -> None:
        with self._lock:
            row = self.get(name)
            if row.status in OPEN:
                raise TabpilotError(f"human loop {name} is {row.status}; stop it first "
                                    "(StopHumanLoop), then delete it once it is Stopped")
            self.store.delete_resource(LOOP, name)
        self.audit.record("loop-deleted", loop=name)

    # -- the queue ---------------------------------------------------------------------
    def next_task(self, worker: str) -> Task | None:
        """The task `worker` holds, or a new lease on the oldest loop that needs them."""
        now = self.clock()
        with self._lock:
            open_loops = [r for r in self.store.list_resources(LOOP) if r.status in OPEN]
            for row in open_loops:
                lease = row.spec["leases"].get(worker)
                if lease and lease["until"] > now:
                    return self._task(row, lease["until"])
            for row in open_loops:
                if row.status == STOPPING:  # never offered again; Stopped once leases end
                    if not any(x["until"] > now for x in row.spec["leases"].values()):
                        self._save(row, {**row.spec, "leases": {}}, STOPPED)
                    continue
                if now >= row.spec["expiresAt"]:
                    self._save(row, {**row.spec, "leases": {}}, FAILED,
                               "TaskAvailabilityLifetimeInSeconds ran out before the loop had "
                               "its answers")
                    self.audit.record("loop-expired", ts=now, loop=row.name)
                    continue
                spec = row.spec
                live = {w: x for w, x in spec["leases"].items() if x["until"] > now}
                answered = {a["workerId"] for a in spec["answers"]}
                if worker in answered or len(answered) + len(live) >= spec["needed"]:
                    continue
                flow = load_flow(self.store, spec["FlowDefinitionName"])
                live[worker] = {"acceptedAt": now, "until": now + flow.task_seconds}
                expired = sorted(set(spec["leases"]) - set(live))
                self._save(row, {**spec, "leases": live})
                for gone in expired:
                    self.audit.record("lease-expired", ts=now, loop=row.name, worker=gone)
                self.audit.record("lease-taken", ts=now, loop=row.name, worker=worker,
                                  until=live[worker]["until"])
                return Task(row.name, flow, json.loads(spec["InputContent"]),
                            live[worker]["until"])
        return None

    def _task(self, row: ResourceRow, until: float) -> Task:
        flow = load_flow(self.store, row.spec["FlowDefinitionName"])
        return Task(row.name, flow, json.loads(row.spec["InputContent"]), until)

    def submit(self, worker: str, loop: str, label: str) -> Verdict:
        """Record `worker`'s label for `loop`; the verdict says whether the loop is done."""
        now = self.clock()
        with self._lock:
            row = self.get(loop)
            spec = row.spec
            lease = spec["leases"].get(worker)
            if row.status not in OPEN or lease is None or lease["until"] <= now:
                raise LeaseError(f"your lease on {loop} has ended (or the loop is closed); "
                                 "the task went back to the queue: take the next one")
            choices = [str(x) for x in json.loads(spec["InputContent"]).get("labels") or []]
            if choices and label not in choices:
                raise TabpilotError(f"label {label[:80]!r} is not one of: {', '.join(choices)}")
            if not label.strip():
                raise TabpilotError("choose a label")
            answers = [*spec["answers"], {"workerId": worker, "acceptedAt": lease["acceptedAt"],
                                          "submittedAt": now,
                                          "answerContent": {"label": label}}]
            leases = {w: x for w, x in spec["leases"].items() if w != worker}
            spec = {**spec, "answers": answers, "leases": leases}
            if row.status == STOPPING:  # kept, but a stopped loop decides nothing
                self.audit.record("answer", ts=now, loop=loop, worker=worker, label=label)
                live = any(x["until"] > now for x in leases.values())
                self._save(row, spec, STOPPING if live else STOPPED)
                return Verdict("stopped")
            flow = load_flow(self.store, spec["FlowDefinitionName"])
            verdict = decide([a["answerContent"]["label"] for a in answers], spec["needed"],
                             flow.task_count)
            self.audit.record("answer", ts=now, loop=loop, worker=worker, label=label)
            if verdict.state == "escalate":
                spec["needed"] += 1
                self.audit.record("escalated", ts=now, loop=loop, votes=verdict.votes,
                                  needed=spec["needed"])
                self._save(row, spec)
            elif verdict.state == "no-majority":
                self._save(row, spec, FAILED, f"no majority after {len(answers)} reviewers "
                           f"(votes {verdict.votes})")
                self.audit.record("loop-failed", ts=now, loop=loop, votes=verdict.votes)
            elif verdict.state == "decided":
                self._complete(row, spec, flow, verdict, now)
            else:
                self._save(row, spec)
        return verdict

    def _complete(self, row: ResourceRow, spec: dict[str, Any], flow: Flow, verdict: Verdict,
                  now: float) -> None:
        content = json.loads(spec["InputContent"])
        key = output_key(flow.name, row.name, now)
        document = {"flowDefinitionArn": flow.arn, "humanLoopName": row.name,
                    "inputContent": content,
                    "humanAnswers": [human_answer(a) for a in spec["answers"]],
                    "consensus": {"label": verdict.label, "agreement": verdict.agreement,
                                  "votes": verdict.votes, "reviewers": len(spec["answers"])}}
        write_output(Path(flow.output_dir), key, document)
        if content.get("endpointName") and content.get("inferenceId"):
            write_ground_truth(self.workspace, content["endpointName"], event_id(content),
                               str(verdict.label), row.name, now)
        spec = {**spec, "leases": {}, "consensus": document["consensus"],
                "OutputS3Uri": flow.output_uri.rstrip("/") + "/" + key}
        self._save(row, spec, COMPLETED)
        self.audit.record("loop-completed", ts=now, loop=row.name, label=verdict.label,
                          agreement=verdict.agreement, votes=verdict.votes)

    def _save(self, row: ResourceRow, spec: dict[str, Any], status: str | None = None,
              failure: str | None = None) -> None:
        fields: dict[str, Any] = {"spec": spec}
        if status is not None:
            fields["status"] = status
            if status not in OPEN:
                fields["ended"] = self.clock()
        if failure is not None:
            fields["failure_reason"] = failure
        self.store.update_resource(LOOP, row.name, **fields)


def event_id(content: dict[str, Any]) -> str:
    """The ground-truth eventId of a routed row: the request's inference id; a request of
    several rows gives each row `<inference id>:<row index>`, as model-quality monitoring
    names the rows it reads from the capture (`monitor.capture.row_ids`)."""
    from tabpilot.monitor.capture import row_ids

    rows = int(content.get("rowsInRequest") or 1)
    return row_ids(str(content["inferenceId"]), rows)[int(content.get("rowIndex") or 0)]


def loop_arn(name: str) -> str:
    return arn(LOOP, name)
