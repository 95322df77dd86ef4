"""What a completed loop leaves behind, in the formats other tools read.

    <flow output dir>/<flow>/YYYY/MM/DD/HH/MM/SS/<loop>/output.json
        A2I's output: flowDefinitionArn, humanLoopName, inputContent, humanAnswers (one per
        reviewer: workerId, answerContent, acceptanceTime, submissionTime,
        timeSpentInSeconds), plus tabpilot's `consensus` (label, agreement, votes)
    <workspace>/ground-truth/<endpoint>/YYYY/MM/DD/HH/<loop>.jsonl
        Model Monitor's ground truth for loops of a routed endpoint: eventId is the
        captured request's inference id, data the agreed label (model-quality monitoring
        merges it with the capture by that id)
    <workspace>/review/audit.jsonl
        every event (loop started, lease taken, answer, escalation, completion, stop,
        delete, sign-in) as one JSON line, only ever appended to

Times are UTC; the folders are the completion time's.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

GROUND_TRUTH = "ground-truth"
_append_lock = threading.Lock()


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1000):03d}Z"


def output_key(flow: str, loop: str, ts: float) -> str:
    """The loop's output.json path under the flow's output location, as A2I lays it out."""
    return f"{flow}/{time.strftime('%Y/%m/%d/%H/%M/%S', time.gmtime(ts))}/{loop}/output.json"


def write_output(output_dir: Path, key: str, document: dict[str, Any]) -> Path:
    path = output_dir / key
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(".output.json.tmp")
    fresh.write_text(json.dumps(document, indent=1))
    fresh.replace(path)  # readers never see half a file
    return path


def human_answer(answer: dict[str, Any]) -> dict[str, Any]:
    """A stored answer as output.json's humanAnswers item."""
    return {"acceptanceTime": iso(answer["acceptedAt"]),
            "answerContent": answer["answerContent"],
            "submissionTime": iso(answer["submittedAt"]),
            "timeSpentInSeconds": round(answer["submittedAt"] - answer["acceptedAt"], 3),
            "workerId": answer["workerId"],
            "workerMetadata": {"identityData": {"identityProviderType": "tabpilot",
                                                "sub": answer["workerId"]}}}


def write_ground_truth(workspace: Path, endpoint: str, event_id: str, label: str, loop: str,
                       ts: float) -> Path:
    folder = workspace / GROUND_TRUTH / endpoint / time.strftime("%Y/%m/%d/%H", time.gmtime(ts))
    folder.mkdir(parents=True, exist_ok=True)
    record = {"groundTruthData": {"data": label, "encoding": "CSV"},
              "eventMetadata": {"eventId": event_id}, "eventVersion": "0"}
    path = folder / f"{loop}.jsonl"
    path.write_text(json.dumps(record) + "\n")
    return path


class AuditLog:
    """JSON lines appended with O_APPEND, one write per event: never rewritten, and lines
    from two processes never interleave within a line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, event: str, **fields: Any) -> None:
        line = json.dumps({"time": iso(fields.pop("ts", None) or time.time()),
                           "event": event, **fields}, default=str) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _append_lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)

    def events(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]
