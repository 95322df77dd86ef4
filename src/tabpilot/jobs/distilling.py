"""The job's distillation step: a fast `-distilled` candidate taught by its ensemble.

After the greedy ensemble (or the stack) is built, one LightGBM model is fitted to its
predictions (execution/distill.py says how, and how it is scored honestly). It is a
candidate of its own, ranked by its own validation score; the default selection
(jobs/selection.py) hands it out when it is within the stated tolerance of the best and
far faster. It runs in the executor like a trial, killed at its hard deadline.

A mixin of JobRunner (its store, executor, request, results and job name).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tabpilot.data.prepare import Prepared
from tabpilot.data.split import Split
from tabpilot.execution import TrialTask
from tabpilot.execution import distill as student
from tabpilot.jobs import status as st
from tabpilot.jobs.views import leaderboard

if TYPE_CHECKING:
    from tabpilot.jobs.runner import Progress

log = logging.getLogger("tabpilot.jobs.distilling")

SUFFIX = "-distilled"
SOURCE = "distilled"  # the candidate's source and `trained_on`
TEACHERS = ("Ensemble", "Stacking")  # algorithms worth distilling: several models per row
SAFETY = 1.5  # the estimate is raised by half: a loaded machine, a slower student
PACKAGE_SECONDS = 1.5  # compile, check and time the student
# the student (learning rate 0.1, 15 leaves, at most 300 rounds) against the job's fastest
# LightGBM trial, per row fitted: on the six 60 s jobs of bench.default_model that
# distilled (titanic, credit_g, telco_churn, bank_marketing, adult, california_housing),
# the estimate below with it came to 0.9-1.9 times their distillations' 2.0-7.6 s
STUDENT_COST = 0.6
# the reserve's cap: a fraction of the limit, at most this many seconds
SHARE, SHARE_MAX_SECONDS = 0.05, 30.0
TEACHER_ROWS_PER_SECOND = 20_000.0  # an ensemble's batch predictions, when not measured


def distill_seconds(limit: float, lightgbm_fit_seconds: float | None, n_rows: int,
                    n_classes: int, n_folds: int, level2_reserve: float = 0.0) -> float:
    """The time the search keeps for distilling: the estimate with its SAFETY margin, less
    what the stack's and the ensemble's shares leave unused (they are doubled estimates:
    half of them, which they seldom need), capped at SHARE of the limit. Without a
    LightGBM trial to scale from, the cap."""
    cap = min(SHARE * limit, SHARE_MAX_SECONDS)
    if lightgbm_fit_seconds is None:
        return cap
    needed = SAFETY * distill_estimate(lightgbm_fit_seconds, n_rows, n_classes, n_folds)
    return min(cap, max(0.0, needed - level2_reserve / 2))


def distill_estimate(lightgbm_fit_seconds: float, n_rows: int, n_classes: int,
                     n_folds: int) -> float:
    """Seconds a distillation takes, from the job's fastest LightGBM trial: the student's
    fits (STUDENT_COST of the trial's, scaled to the synthetic rows, the repeats per class
    and the fit on every row), the teacher's predictions of the synthetic rows (the fold
    models' for each fold's, about one whole teacher's, and the whole teacher's for the
    last student's) and packaging."""
    repeats = 1.0 if n_classes < 2 else min(n_classes, 3) * 0.6  # light classes are dropped
    fits = (n_folds + student.FINAL_SHARE) / n_folds if n_folds > 1 else 1.0
    synthetic = min(n_rows * student.SYNTHETIC_PER_ROW, student.MAX_SYNTHETIC)
    rows = 1.0 + synthetic / max(n_rows, 1)
    taught = synthetic * (2 if n_folds > 1 else 1)
    return (lightgbm_fit_seconds * STUDENT_COST * fits * rows * repeats
            + taught / TEACHER_ROWS_PER_SECOND + PACKAGE_SECONDS)


class Distilling:
    def _lightgbm_fit(self) -> float | None:
        """The fit seconds of the job's fastest LightGBM trial on every row, if any."""
        fits = [r.fit_seconds for r in self._results.values()
                if r.status == st.COMPLETED and r.candidate.startswith(student.FAMILY + "-")
                and not r.details.get("train_rows")]
        return min(fits) if fits else None

    def _distill_share(self, prepared: Prepared, split: Split, level2_reserve: float
                       ) -> float:
        """distill_seconds for this job, from its fastest LightGBM trial so far."""
        return distill_seconds(self.request.time_limit, self._lightgbm_fit(),
                               len(prepared.y), len(prepared.classes or []), len(split.folds),
                               level2_reserve)

    def _distill(self, prepared: Prepared, split: Split, job_dir: Path, progress: Progress,
                 soft_end: float, hard_end: float) -> bool:
        """Distil the most accurate candidate when it is an ensemble or a stack and the
        time left is at least the estimate (undoubled); the student is recorded as a
        candidate (Failed, with the reason, when it does not finish). True when a stop
        request arrived meanwhile."""
        board = leaderboard(self.store, self.name)
        if board.empty or board.iloc[0]["algorithm"] not in TEACHERS:
            return False
        teacher = str(board.iloc[0]["candidate"])
        row = self.store.get_candidate(self.name, teacher)
        fit = self._lightgbm_fit()
        needed = PACKAGE_SECONDS * 2 if fit is None else distill_estimate(
            fit, len(prepared.y), len(prepared.classes or []), len(split.folds))
        if soft_end - time.time() < needed:
            log.info("no time left to distil %s (%.1fs needed)", teacher, needed)
            return False
        name = f"{teacher}{SUFFIX}"
        number = 1 + max(c.number for c in self.store.list_candidates(self.name))
        out = job_dir / "candidates" / name / "model"
        self.store.add_candidate(job=self.name, name=name, number=number,
                                 algorithm="LightGBM", family=student.FAMILY,
                                 params=dict(student.STUDENT_PARAMS, distilled_from=teacher),
                                 source=SOURCE, status=st.CANDIDATE_IN_PROGRESS,
                                 trained_on=SOURCE)
        self.store.update_job(self.name, secondary_status=st.TRAINING_MODELS)
        task = TrialTask(name, student.FAMILY, dict(student.STUDENT_PARAMS), str(out),
                         soft_end, hard_end, number, distill_of={
                             "teacher": teacher, "teacher_dir": row.artifact_dir})
        return self._await_one(task, prepared, progress, hard_end)
