"""The Executor interface: how trials run, whatever runs them.

Call sequence, as the job loop uses it:

    executor.start(context)             once; the data every trial needs
    while ...:
        while executor.free_slots():
            executor.submit(task)       never blocks
        for result in executor.poll(timeout=0.2):
            ...                         finished, failed or timed-out trials
    executor.shutdown()                 kills whatever still runs

A trial that crashes, runs out of memory or passes its hard deadline comes back from
`poll` as a Failed result; it never raises in the caller.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.data.schema import Schema
from tabpilot.data.split import Split
from tabpilot.metrics import Metric
from tabpilot.tasks import ProblemType


@dataclass
class TrialContext:
    """What every trial of a job shares: the data, its split, what to optimise."""

    X: pd.DataFrame
    y: np.ndarray
    split: Split
    schema: Schema
    problem_type: ProblemType
    metric: Metric
    classes: list | None
    job_name: str
    target: str
    weights: np.ndarray | None = None
    n_threads: int = 1
    seed: int = 0


@dataclass
class TrialTask:
    candidate: str
    family: str
    params: dict[str, Any]
    output_dir: str
    soft_deadline: float  # time.time() by which fitting should stop, keeping what it has
    hard_deadline: float  # time.time() after which the trial is killed
    number: int = 0
    # set for a refit on all training rows: candidate, infos, objective, metrics, threshold
    refit_of: dict[str, Any] | None = None
    train_rows: int | None = None  # fit on a subsample of this many rows per fold (large data)


@dataclass
class TrialResult:
    candidate: str
    status: str  # Completed | Failed
    objective: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    threshold: float | None = None
    fit_seconds: float = 0.0
    latency_ms_p50: float | None = None
    throughput_rows_s: float | None = None
    model_bytes: int | None = None
    artifact_dir: str | None = None
    failure_reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Executor(ABC):
    @abstractmethod
    def start(self, context: TrialContext) -> None: ...

    @abstractmethod
    def free_slots(self) -> int: ...

    @abstractmethod
    def submit(self, task: TrialTask) -> None: ...

    @abstractmethod
    def poll(self, timeout: float) -> list[TrialResult]: ...

    @abstractmethod
    def running(self) -> list[str]:
        """Candidate names of the trials still running."""

    @abstractmethod
    def shutdown(self) -> list[str]:
        """Stop every running trial; return the names of those cut short."""
