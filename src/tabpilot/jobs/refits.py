"""Retraining on every row, for the job runner: the best holdout candidate refit on train +
holdout, and a k-fold bag that a latency bound rules out collapsed into one `-full` model.

A mixin of JobRunner (it uses the runner's store, executor, request and trial results).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tabpilot.data.prepare import Prepared
from tabpilot.execution import TrialTask
from tabpilot.execution.trial import VALIDATION_PREDICTIONS
from tabpilot.jobs import selection
from tabpilot.jobs import status as st
from tabpilot.jobs.views import leaderboard

if TYPE_CHECKING:
    from tabpilot.jobs.progress import Progress

log = logging.getLogger("tabpilot.jobs")


def _swap_in(new: Path, current: Path) -> None:
    """Replace a model directory by another; at every moment one complete copy exists."""
    old = current.with_name(current.name + "-replaced")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(current, old)
    os.replace(new, current)
    shutil.rmtree(old, ignore_errors=True)


class Refits:
    def _refit_seconds(self, progress: Progress, holdout_share: float) -> float:
        """Time to keep for retraining the best candidate on train + holdout (the
        holdout's share of the rows: `holdout_share`)."""
        best = self._results.get(progress.best_candidate or "")
        if best is None or best.details.get("train_rows"):
            return 0.0  # nothing to refit: no best yet, or a subsample's model (kept as it is)
        # the whole trial (encoding, fitting, scoring), scaled to the larger training set
        return best.fit_seconds / (1 - holdout_share) * 1.25 + \
            best.details.get("package_seconds", 1.0)

    def _refit_best(self, progress: Progress, soft_end: float, kill_at: float,
                    holdout_share: float) -> bool:
        """Retrain the best candidate on every training row, replacing its model in place.

        The candidate keeps its validation scores (measured before the refit). If the refit
        fails or runs out of time, the holdout-trained model stays. Returns True when a
        stop request arrived meanwhile.
        """
        name = progress.best_candidate
        best = self._results[name]
        if best.details.get("train_rows"):
            return False  # trained on a subsample of a large table: all rows would cost too much
        row = self.store.get_candidate(self.name, name)
        now = time.time()
        if soft_end - now < self._refit_seconds(progress, holdout_share) * 0.7:
            return False
        refit_dir = Path(best.artifact_dir).with_name("model-refit")
        task = TrialTask(name, row.family, row.params, str(refit_dir), soft_end,
                         kill_at, row.number, refit_of={
                             "candidate": name, "infos": best.details.get("infos", []),
                             "objective": best.objective, "metrics": best.metrics,
                             "threshold": best.threshold})
        self.store.update_job(self.name, secondary_status=st.TRAINING_MODELS)
        self.executor.submit(task)
        while self.executor.running():
            if self._stop_requested():
                self.executor.shutdown()
                shutil.rmtree(refit_dir, ignore_errors=True)
                return True
            for result in self.executor.poll(timeout=0.2):
                if result.status == st.COMPLETED:
                    _swap_in(refit_dir, Path(best.artifact_dir))
                    self.store.update_candidate(
                        self.name, name, trained_on="train+holdout",
                        latency_ms_p50=result.latency_ms_p50, model_bytes=result.model_bytes,
                        throughput_rows_s=result.throughput_rows_s)
                else:
                    shutil.rmtree(refit_dir, ignore_errors=True)
                    log.warning("refit of %s failed (%s); keeping the holdout-trained model",
                                name, result.failure_reason)
            if time.time() >= kill_at:
                break
        return False

    def _refit_full_seconds(self, prepared: Prepared, n_folds: int) -> float:
        """Time to keep for collapsing the best bag into one model, when the bound rules
        the bag out: one fit on every row, about its k fold fits / (k - 1)."""
        done = [r for r in self._results.values()
                if r.status == st.COMPLETED and r.objective is not None]
        if not done:
            return 0.0
        best = max(done, key=lambda r: prepared.metric.sign() * r.objective)
        if selection.within(best.latency_ms_p50, self.request.max_latency_ms):
            return 0.0
        return best.fit_seconds / max(n_folds - 1, 1) * 1.25 + \
            best.details.get("package_seconds", 1.0)

    def _refit_full(self, prepared: Prepared, split, job_dir: Path, progress: Progress,
                    soft_end: float, kill_at: float) -> bool:
        """Collapse the best k-fold bag that the latency bound rules out into one model
        refit on every row, as a candidate of its own. True when a stop request arrived.

        The refit keeps the bag's validation scores. They are the out-of-fold scores of
        its fold models, each fitted on (k-1)/k of the rows, so one model fitted on all
        of them is expected to do at least as well on new rows; the bag itself usually does
        a little better than either, which is what the bound costs.
        """
        k = len(split.folds)
        bag = selection.refit_full_target(leaderboard(self.store, self.name),
                                          self.request.max_latency_ms or 0.0, k)
        parent = self._results.get(bag or "")
        if bag is None or parent is None:
            return False
        needed = parent.fit_seconds / max(k - 1, 1) + parent.details.get("package_seconds", 1.0)
        if soft_end - time.time() < needed:
            log.info("no time left to refit %s on every row", bag)
            return False
        row = self.store.get_candidate(self.name, bag)
        name = f"{bag}-full"
        number = 1 + max(c.number for c in self.store.list_candidates(self.name))
        out = job_dir / "candidates" / name / "model"
        out.parent.mkdir(parents=True, exist_ok=True)
        # the predictions its (inherited) scores come from; reports read them
        shutil.copyfile(Path(parent.artifact_dir).parent / VALIDATION_PREDICTIONS,
                        out.parent / VALIDATION_PREDICTIONS)
        self.store.add_candidate(job=self.name, name=name, number=number,
                                 algorithm=row.algorithm, family=row.family, params=row.params,
                                 source=selection.REFIT_FULL, status=st.CANDIDATE_IN_PROGRESS,
                                 trained_on=selection.REFIT_FULL)
        self.store.update_job(self.name, secondary_status=st.TRAINING_MODELS)
        return self._await_one(TrialTask(name, row.family, row.params, str(out), soft_end,
                                         kill_at, number, refit_of={
                                             "candidate": bag, "infos": parent.details["infos"],
                                             "objective": parent.objective,
                                             "metrics": parent.metrics,
                                             "threshold": parent.threshold}),
                               prepared, progress, kill_at)

    def _await_one(self, task: TrialTask, prepared: Prepared, progress: Progress,
                   kill_at: float) -> bool:
        """Run one task in the executor to its end and record its candidate. True when a
        stop request arrived meanwhile (finalising then stops the task, marked Stopped)."""
        self.executor.submit(task)
        while self.executor.running():
            if self._stop_requested():
                return True
            for result in self.executor.poll(timeout=0.2):
                self._record(result, prepared, progress)
            if time.time() >= kill_at:
                break
        return False
