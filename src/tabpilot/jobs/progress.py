"""What a running job reports to its caller's `on_progress` (the CLI's live view, the
Python API's log lines).

The job calls `on_progress` at every change of phase, after every trial it collects, and
once at its end with its final status; `phase` is finer than Autopilot's secondary status
(which the store keeps in Autopilot's own values): Stacking, Ensembling, Distilling and
Refitting are all `TrainingModels` there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# the order a job walks its phases in (any may be skipped); then its final secondary status
STACKING, ENSEMBLING, DISTILLING, REFITTING = "Stacking", "Ensembling", "Distilling", "Refitting"


@dataclass
class Progress:
    job: str
    status: str
    secondary_status: str
    elapsed: float
    time_limit: float
    done: int = 0
    failed: int = 0
    running: int = 0
    best_value: float | None = None
    best_candidate: str | None = None
    metric: str | None = None
    phase: str = ""  # what the job does now (the secondary status, or finer: Ensembling)
    # once the data is analysed: what the job inferred, why, and the leaks it found
    # (rows, problem_type and its reason, metric and its reason, columns by kind, insights)
    analysis: dict[str, Any] | None = None
    # once the split is made: {"split": how candidates are validated and why, in words,
    # "given": whether the request chose it}
    validation: dict[str, Any] | None = None
    failure_reason: str | None = None  # at the end, when the job Failed or was Stopped

    @property
    def remaining(self) -> float:
        return max(0.0, self.time_limit - self.elapsed)
