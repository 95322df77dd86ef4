"""The Python API: `AutoML(target=...).fit(data)` and `load_model(...)`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from tabpilot import names
from tabpilot.artifacts import Model
from tabpilot.artifacts import load as load_dir
from tabpilot.artifacts.package import is_model_directory
from tabpilot.config import JobRequest, workspace_path
from tabpilot.errors import ConfigError, NotFoundError, shown
from tabpilot.jobs import JobRunner, Progress, candidates_view, describe_job, leaderboard
from tabpilot.store import Store


class AutoML:
    """One AutoML job. Keyword arguments are the fields of `tabpilot.config.JobRequest`."""

    def __init__(self, target: str, *, workspace: str | Path | None = None,
                 on_progress: Callable[[Progress], None] | None = None, **settings: Any) -> None:
        self.request = JobRequest.build(target=target, **settings)
        self.workspace = workspace_path(workspace)
        self.on_progress = on_progress
        self.name: str | None = None
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.for_workspace(self.workspace)
        return self._store

    def fit(self, data: str | Path | pd.DataFrame) -> AutoML:
        # the runner creates the store once the data passed its checks, not before
        runner = JobRunner(self.request, self.workspace, self._store,
                           on_progress=self.on_progress)
        self.name = runner.name
        runner.run(data)
        self._store = runner.store
        return self

    @classmethod
    def attach(cls, name: str, workspace: str | Path | None = None) -> AutoML:
        """The handle of an existing job."""
        store = Store.for_workspace(workspace_path(workspace), create=False)
        job = store.get_job(names.check(name, "job"))
        self = cls(job.request["target"], workspace=workspace)
        self.name, self._store = name, store
        return self

    @classmethod
    def resume(cls, name: str, workspace: str | Path | None = None, *,
               time_limit: float | None = None, data: str | Path | pd.DataFrame | None = None,
               on_progress: Callable[[Progress], None] | None = None) -> AutoML:
        """Continue a Stopped or Failed job from its finished candidates, for `time_limit`
        seconds (default: the time it had left, or its whole limit again when under a
        quarter was left); `data`, the training table when the recorded one is gone.
        A running or completed job is refused (JobStateError)."""
        from tabpilot.jobs.resume import resume

        self = cls.attach(name, workspace)
        resume(self.workspace, name, time_limit, data, self.store, on_progress)
        return self

    def _job(self) -> str:
        if self.name is None:
            raise NotFoundError("this AutoML has not been fitted; call fit(data) first")
        return self.name

    def describe(self) -> dict[str, Any]:
        return describe_job(self.store, self._job())

    def candidates(self) -> list[dict[str, Any]]:
        return candidates_view(self.store, self._job())["Candidates"]

    def leaderboard(self) -> pd.DataFrame:
        return leaderboard(self.store, self._job())

    def best_model(self) -> Model:
        return load_model(self._job(), workspace=self.workspace, store=self.store)


def load_model(job_or_path: str | Path, candidate: str | None = None,
               workspace: str | Path | None = None, store: Store | None = None) -> Model:
    """Load a packaged model from its directory, or a job's best (or named) candidate."""
    return load_dir(model_directory(job_or_path, candidate, workspace, store))


def model_directory(job_or_path: str | Path, candidate: str | None = None,
                    workspace: str | Path | None = None, store: Store | None = None) -> Path:
    """The model directory itself, or the one of a job's best (or named) candidate."""
    path = Path(job_or_path)
    if is_model_directory(path):
        return path.resolve()
    if not names.is_valid(str(job_or_path), "job"):  # the name becomes a path: check it
        if path.is_dir():  # `..`, `models/`: meant as a model's folder; say what it lacks
            raise NotFoundError(f"{shown(str(path))} is a folder without a packaged model "
                                "(no manifest.json); give a model directory or a job name")
        raise ConfigError(f"{names.problem(str(job_or_path), 'job')} (nor is it a model "
                          "directory)")
    if candidate is not None:
        names.check(candidate, "candidate")
    store = store or Store.for_workspace(workspace_path(workspace), create=False)
    job = store.get_job(str(job_or_path))
    name = candidate or job.best_candidate
    if name is None:
        raise NotFoundError(f"job {job.name!r} has no finished candidate yet "
                            f"(status {job.status})")
    row = store.get_candidate(job.name, name)
    if not row.artifact_dir:
        raise NotFoundError(f"candidate {name!r} of job {job.name!r} has no packaged model "
                            f"(status {row.status}); pick one from `tabpilot candidates`")
    return Path(row.artifact_dir).resolve()
