"""Proposing and recording trials, for the job runner: the job's search strategy (told a
resumed job's earlier trials), each proposal turned into a candidate and a trial task, and
each trial's result recorded on the leaderboard and in the job's progress.

A mixin of JobRunner (it uses the runner's store, executor, request, results and name).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tabpilot.data.prepare import Prepared
from tabpilot.execution import TrialResult, TrialTask
from tabpilot.jobs import selection
from tabpilot.jobs import status as st
from tabpilot.jobs.views import leaderboard
from tabpilot.models import FAMILIES
from tabpilot.search import Finished, PortfolioThenTPE, Proposal
from tabpilot.tasks import ProblemType

if TYPE_CHECKING:
    from tabpilot.jobs.progress import Progress

log = logging.getLogger("tabpilot.jobs")


@dataclass
class Previous:
    """What a resumed job keeps from its earlier runs (jobs/resume.py reads it)."""

    history: list[Finished]  # the search's finished trials, to tell a fresh search
    next_number: int  # the first candidate number free
    results: dict[str, TrialResult]  # completed level-1 candidates, as trial results


class Trials:
    def _strategy(self, prepared: Prepared, previous: Previous | None = None
                  ) -> PortfolioThenTPE:
        """The job's search: told an earlier run's trials (`previous`), if any; a target
        that is never negative lets a family choose a loss for it (ModelFamily.losses:
        LightGBM's and XGBoost's Tweedie)."""
        y = prepared.y
        nonnegative = prepared.problem_type is ProblemType.REGRESSION and len(y) > 0 \
            and bool(np.nanmin(y) >= 0)
        return PortfolioThenTPE(self._families(), prepared.metric, prepared.problem_type,
                                len(y), self.request.seed,
                                history=previous.history if previous else None,
                                first_number=previous.next_number if previous else 0,
                                nonnegative_target=nonnegative)

    def _progress_so_far(self, progress: Progress) -> None:
        """A resumed job's candidates that completed before: counted, and the best kept."""
        board = leaderboard(self.store, self.name)
        progress.done = len(board)
        best, _ = selection.for_request(board, self.request)
        if best is not None:
            progress.best_candidate = best
            progress.best_value = float(board.loc[board["candidate"] == best,
                                                  "objective"].iloc[0])

    def _submit(self, strategy: PortfolioThenTPE, proposals: dict[str, Proposal],
                job_dir: Path, now: float, soft_end: float, per_trial: float,
                kill_at: float) -> None:
        proposal = strategy.ask()
        task = self._task(proposal, job_dir, now, soft_end, per_trial, kill_at)
        proposals[task.candidate] = proposal
        self.executor.submit(task)

    def _task(self, proposal: Proposal, job_dir: Path, now: float, soft_end: float,
              per_trial: float, kill_at: float) -> TrialTask:
        family = FAMILIES[proposal.family]
        name = f"{proposal.family}-{proposal.number:03d}"
        out = job_dir / "candidates" / name / "model"
        self.store.add_candidate(job=self.name, name=name, number=proposal.number,
                                 algorithm=family.label, family=family.name,
                                 params=proposal.params, source=proposal.source,
                                 status=st.CANDIDATE_IN_PROGRESS,
                                 trained_on=f"{proposal.train_rows // 1000}k-sample"
                                 if proposal.train_rows else "train")
        if proposal.source == "promoted" and not self.request.per_trial_time_limit:
            per_trial *= 2  # every row of a large table, after a screening on a subsample
        return TrialTask(name, proposal.family, proposal.params, str(out),
                         soft_deadline=min(soft_end, now + per_trial),
                         hard_deadline=min(kill_at, now + per_trial * 1.25 + 5),
                         number=proposal.number, train_rows=proposal.train_rows)

    def _record(self, result: TrialResult, prepared: Prepared, progress: Progress) -> None:
        done = result.status == st.COMPLETED
        self._results[result.candidate] = result
        self.store.update_candidate(
            self.name, result.candidate, metrics=result.metrics if done else None,
            status=result.status, objective=result.objective, threshold=result.threshold,
            fit_seconds=result.fit_seconds, latency_ms_p50=result.latency_ms_p50,
            throughput_rows_s=result.throughput_rows_s, model_bytes=result.model_bytes,
            artifact_dir=result.artifact_dir, failure_reason=result.failure_reason,
            ended=time.time())
        if not done:
            progress.failed += 1
            log.warning("candidate %s failed: %s", result.candidate, result.failure_reason)
            return
        progress.done += 1
        if result.objective is not None and prepared.metric.is_better(
                result.objective, progress.best_value) and selection.within(
                result.latency_ms_p50, self.request.max_latency_ms):
            progress.best_value = result.objective
            progress.best_candidate = result.candidate
            self.store.update_job(self.name, best_candidate=result.candidate)
