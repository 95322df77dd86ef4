"""What a running job reports to its caller's `on_progress` (the CLI's live view)."""

from __future__ import annotations

from dataclasses import dataclass


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

    @property
    def remaining(self) -> float:
        return max(0.0, self.time_limit - self.elapsed)
