"""How a trial's files come back to its job when the trial ran on another machine.

A trial writes its candidate folder (`model/`, `validation_predictions.npy`, the
diagnostics beside them) at `task.output_dir`, a path in the job's workspace. The local
executor's trials run on the job's machine, so that is the end of it. A Ray trial may run
on another node: its files reach the job only if that path is shared (one machine's
cluster, or a network filesystem mounted at the same path on every node).

These two functions are the only place a remote executor passes a trial's files, so an
artifact store (issue 16's `--artifacts s3://...`) can replace them: `hand_back` would
upload the candidate folder where the trial ran and name it in the result, `receive`
would fetch or verify it in the job's process. Until then they keep the shared path and
turn a folder the job cannot see into a Failed trial that says why, never a candidate
whose model is missing.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

from tabpilot.execution.base import TrialResult, TrialTask


def hand_back(task: TrialTask, result: TrialResult) -> TrialResult:
    """Run where the trial ran, after it: the result whose files the job can reach.

    Today the files stay where the trial wrote them (a path the job shares); the result
    notes the host, so a job that cannot see them can say where they are."""
    return replace(result, details={**result.details, "host": socket.gethostname()})


def receive(result: TrialResult) -> TrialResult:
    """Run in the job's process: the result as the job records it. A completed trial
    whose model folder is not visible here comes back Failed, naming the host and the
    fix (a shared filesystem, or an artifact store)."""
    if result.status != "Completed" or result.artifact_dir is None:
        return result
    if (Path(result.artifact_dir) / "manifest.json").is_file():
        return result
    host = result.details.get("host", "another host")
    return replace(result, status="Failed", objective=None, artifact_dir=None,
                   failure_reason=f"the trial's model was written on {host} at "
                                  f"{result.artifact_dir}, which this job's machine cannot "
                                  "see; give every node the workspace at the same path "
                                  "(a shared filesystem)")
