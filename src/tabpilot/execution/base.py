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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tabpilot.data.schema import Schema
from tabpilot.data.split import Split
from tabpilot.execution.columnar import ColumnStore, write_columns
from tabpilot.metrics import Metric
from tabpilot.tasks import ProblemType

if TYPE_CHECKING:
    from tabpilot.artifacts.store import ArtifactStore


@dataclass
class TrialContext:
    """What every trial of a job shares: the data, its split, what to optimise.

    The feature table travels in one of two forms. `X`, the whole frame, is what an
    executor without a shared filesystem ships (pickled with the context). A local
    executor stores it once instead (`stored`): `X` is then None, `table` names a column
    store that each trial memory-maps and reads only its rows from (or is the store
    itself, held in memory: the Ray executor's, in Ray's object store), and `raw_rows` keeps
    the few original rows that packaging checks and latency timing run on. Trials read
    the table through `features` and `raw`, whichever form it has.
    """

    X: pd.DataFrame | None
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
    table: str | ColumnStore | None = None  # an execution.columnar store of X's features
    raw_rows: pd.DataFrame | None = None  # with `table`: original rows, by position in X
    raw_positions: np.ndarray | None = None

    @property
    def columns(self) -> list[str]:
        frame = self.X if self.X is not None else self.raw_rows
        return [] if frame is None else list(frame.columns)

    def features(self, rows: np.ndarray | None = None) -> pd.DataFrame:
        """The rows (all when None), in that order, as the encoders should see them."""
        if self.table is None:
            assert self.X is not None
            return self.X if rows is None else self.X.iloc[rows]
        store = self.table if isinstance(self.table, ColumnStore) else ColumnStore(self.table)
        return store.frame(rows)

    def raw(self, rows: np.ndarray) -> pd.DataFrame:
        """Original rows (for packaging checks and timing): any row with `X`, else those
        that `stored` kept (the validation rows those use)."""
        if self.X is not None:
            return self.X.iloc[rows]
        assert self.raw_rows is not None and self.raw_positions is not None
        at = np.searchsorted(self.raw_positions, rows)
        if len(rows) and (at.max() >= len(self.raw_positions)
                          or not np.array_equal(self.raw_positions[at], rows)):
            raise KeyError("rows not kept with the stored table")
        return self.raw_rows.iloc[at]

    def stored(self, folder: str | Path, keep: np.ndarray) -> TrialContext:
        """This context with its table written to a column store in `folder` (which
        must stay while trials run) and only the original rows `keep` in memory."""
        if self.X is None:
            return self
        write_columns(self.X, self.schema, folder)
        keep = np.unique(keep)
        return replace(self, X=None, table=str(folder), raw_rows=self.X.iloc[keep],
                       raw_positions=keep)


RAW_VALIDATION_ROWS = 500  # validation rows a trial checks a compiled model on
RAW_TIMING_ROWS = 200  # rows of the first fold's validation part its latency is timed on


def raw_rows_needed(split: Split) -> np.ndarray:
    """The original rows trials read: compiled-path checks and latency timing."""
    return np.concatenate([split.validation_rows()[:RAW_VALIDATION_ROWS],
                           split.folds[0][1][:RAW_TIMING_ROWS]])


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
    # set for a distillation (execution/distill.py): teacher, teacher_dir, predictions
    distill_of: dict[str, Any] | None = None


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
    def warm_up(self) -> None:
        """Start, in the background, what the first trial would wait for (a process
        pool's imports), while the job analyses its data. Never fails; by default there
        is nothing to start."""
        return None

    def hand_back_through(self, artifacts: ArtifactStore, workspace: Path) -> None:
        """The job's artifact store and workspace, told before `start`: an executor whose
        trials run on other machines hands their files back through it
        (`execution/handback.py`). The local executor's trials write the job's folder
        directly: nothing to do."""
        return None

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
