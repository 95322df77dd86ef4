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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from tabpilot.data.prepare import Prepared
from tabpilot.data.split import Split
from tabpilot.execution import TrialTask
from tabpilot.execution import distill as student
from tabpilot.jobs import ensembling, selection
from tabpilot.jobs import status as st
from tabpilot.jobs.progress import DISTILLING
from tabpilot.jobs.views import leaderboard, refit_names

if TYPE_CHECKING:
    from tabpilot.jobs.progress import Progress

log = logging.getLogger("tabpilot.jobs.distilling")

SUFFIX = "-distilled"
SOURCE = "distilled"  # the candidate's source and `trained_on`
TEACHERS = selection.COMBINED  # algorithms worth distilling: several models per row
SAFETY = 1.5  # the estimate is raised by half: a loaded machine, a slower student
PACKAGE_SECONDS = 1.5  # compile, check and time the student
# the student (learning rate 0.1, 15 leaves, at most 300 rounds) against the job's fastest
# LightGBM trial, per row fitted: on the six 60 s jobs of bench.default_model that
# distilled (titanic, credit_g, telco_churn, bank_marketing, adult, california_housing),
# the estimate below with it came to 0.9-1.9 times their distillations' 2.0-7.6 s
STUDENT_COST = 0.6
# a student with the best LightGBM trial's parameters and RICH_SYNTHETIC synthetic rows,
# against that trial per row fitted (its rounds: early-stopped like the trial's)
RICH_COST = 1.0
# the reserve's cap: a fraction of the limit, at most this many seconds
SHARE, SHARE_MAX_SECONDS = 0.05, 30.0
TEACHER_ROWS_PER_SECOND = 20_000.0  # an ensemble's batch predictions, when not measured


@dataclass
class Plan:
    """How a job distils: the student's parameters, its minimum of synthetic rows per fit,
    and the estimated seconds."""

    params: dict[str, Any]
    min_synthetic: int
    seconds: float


def distill_seconds(limit: float, plan: Plan | None, level2_reserve: float = 0.0) -> float:
    """The time the search keeps for distilling: the plan's estimate with its SAFETY
    margin, less what the stack's and the ensemble's shares leave unused (they are doubled
    estimates: half of them, which they seldom need), capped at SHARE of the limit.
    Without a plan (no LightGBM trial to scale from yet), the cap."""
    cap = min(SHARE * limit, SHARE_MAX_SECONDS)
    if plan is None:
        return cap
    return min(cap, max(0.0, SAFETY * plan.seconds - level2_reserve / 2))


def choose_plan(plans: list[Plan], seconds_left: float) -> Plan | None:
    """The first (best) plan whose estimate fits in the time left; None when none does."""
    return next((p for p in plans if p.seconds <= seconds_left), None)


@dataclass
class Teacher:
    """What labelling costs with a teacher: its batch predictions' rate and its size (it
    is loaded into the student's process); a typical ensemble's before one is built."""

    rows_per_second: float = TEACHER_ROWS_PER_SECOND
    model_bytes: int = 0

    @classmethod
    def measured(cls, row: Any) -> Teacher:
        """From the teacher's candidate row: the throughput and size its packaging measured
        (wine_quality's ensemble at 300 s: 597 rows a second, 1.6 GB)."""
        rate = row.throughput_rows_s if row.throughput_rows_s else TEACHER_ROWS_PER_SECOND
        return cls(rate, row.model_bytes or 0)

    def seconds(self, rows: int) -> float:
        # its members loaded into the student's process, at the ensembles' measured rate
        return self.model_bytes / ensembling.LOAD_BYTES_PER_SECOND + rows / self.rows_per_second


class Lesson(NamedTuple):
    """A job's teacher (its name and store row), what labelling with it costs, and the
    ways to distil it, best first (`Distilling._lesson`)."""

    teacher: str
    row: Any
    costs: Teacher
    plans: list[Plan]


def distill_estimate(lightgbm_fit_seconds: float, n_rows: int, n_classes: int,
                     n_folds: int, cost: float = STUDENT_COST, min_synthetic: int = 0,
                     teacher: Teacher | None = None) -> float:
    """Seconds a distillation takes, from a LightGBM trial of the job: the student's fits
    (`cost` times the trial's, scaled to the synthetic rows, the repeats per class and the
    fit on every row), loading the teacher and its predictions of the synthetic rows (the
    fold models' for each fold's, about one whole teacher's, and the whole teacher's for the
    last student's) and packaging."""
    repeats = 1.0 if n_classes < 2 else min(n_classes, 3) * 0.6  # light classes are dropped
    fits = (n_folds + student.FINAL_SHARE) / n_folds if n_folds > 1 else 1.0
    synthetic = student.synthetic_rows(n_rows, min_synthetic)
    rows = 1.0 + synthetic / max(n_rows, 1)
    taught = synthetic * (2 if n_folds > 1 else 1)
    return (lightgbm_fit_seconds * cost * fits * rows * repeats
            + (teacher or Teacher()).seconds(taught) + PACKAGE_SECONDS)


class Distilling:
    def _plans(self, board: pd.DataFrame, prepared: Prepared, split: Split,
               teacher: Teacher | None = None) -> list[Plan]:
        """The ways to distil, best first: a student with the parameters of the job's best
        LightGBM trial (on every row) and RICH_SYNTHETIC synthetic rows, then the cheap
        STUDENT_PARAMS one, each with its estimate (with `teacher`'s costs once it is
        built); none before a LightGBM trial is done."""
        done = {n: r for n, r in self._results.items() if r.status == st.COMPLETED
                and n.startswith(student.FAMILY + "-") and not r.details.get("train_rows")
                and not n.endswith(SUFFIX)}
        ranked = [n for n in board["candidate"] if n in done]
        if not ranked:
            return []
        shape = len(prepared.y), len(prepared.classes or []), len(split.folds)
        best = self.store.get_candidate(self.name, ranked[0])
        fastest = min(r.fit_seconds for r in done.values())
        return [Plan(student.rich_params(best.params), student.RICH_SYNTHETIC,
                     distill_estimate(done[ranked[0]].fit_seconds, *shape, cost=RICH_COST,
                                      min_synthetic=student.RICH_SYNTHETIC, teacher=teacher)),
                Plan(dict(student.STUDENT_PARAMS), 0,
                     distill_estimate(fastest, *shape, teacher=teacher))]

    def _distill_share(self, board: pd.DataFrame, prepared: Prepared, split: Split,
                       level2_reserve: float) -> float:
        """distill_seconds for this job's best plan so far (`board`: the leaderboard)."""
        plans = self._plans(board, prepared, split)
        return distill_seconds(self.request.time_limit, plans[0] if plans else None,
                               level2_reserve)

    def _lesson(self, prepared: Prepared, split: Split) -> Lesson | None:
        """The teacher a student would learn from, the most accurate candidate not refit on
        every row when it is an ensemble or a stack (a model refit on every row has learnt
        the rows its students would be scored on), with its store row, its measured costs
        and the ways to distil it, best first; None when there is no such teacher."""
        board = leaderboard(self.store, self.name)
        board = board[~board["candidate"].isin(refit_names(self.store, self.name))]
        if board.empty or board.iloc[0]["algorithm"] not in TEACHERS:
            return None
        teacher = str(board.iloc[0]["candidate"])
        row = self.store.get_candidate(self.name, teacher)
        costs = Teacher.measured(row)
        plans = self._plans(board, prepared, split, costs) or [
            Plan(dict(student.STUDENT_PARAMS), 0, PACKAGE_SECONDS * 2)]
        return Lesson(teacher, row, costs, plans)

    def _distill_kept(self, prepared: Prepared, split: Split, share: float) -> float:
        """The time the steps after the ensemble keep for distilling: `share` while the
        cheapest way to distil the job's teacher, its costs measured now that it is built,
        fits in it; none otherwise. Distilling would not start, and the refits, the `-full`
        stacks and ensemble and the fast ensemble get the time (wine_quality at 60 s: a
        stack of bags, 700 MB, too slow a teacher for its 3 s, which went unused while two
        of the stack's bags were not refit for lack of time)."""
        if share <= 0:
            return 0.0
        lesson = self._lesson(prepared, split)
        if lesson is None:
            return 0.0
        cheapest = min(plan.seconds for plan in lesson.plans)
        if cheapest <= share:
            return share
        log.info("distilling %s would take %.1fs, more than the %.1fs kept for it; the steps "
                 "before it get that time", lesson.teacher, cheapest, share)
        return 0.0

    def _distill(self, prepared: Prepared, split: Split, job_dir: Path, progress: Progress,
                 soft_end: float, hard_end: float) -> bool:
        """Distil the job's teacher (`_lesson`) when the time left is at least the estimate
        (undoubled); the student is recorded as a candidate (Failed, with the reason, when
        it does not finish). True when a stop request arrived meanwhile."""
        lesson = self._lesson(prepared, split)
        if lesson is None:
            return False
        teacher, row, costs, plans = lesson
        plan = choose_plan(plans, soft_end - time.time())
        if plan is None:
            log.info("no time left to distil %s (%.1fs needed; it labels %.0f rows a second "
                     "and loads %.0f MB)", teacher, plans[-1].seconds,
                     costs.rows_per_second, costs.model_bytes / 1e6)
            return False
        name = f"{teacher}{SUFFIX}"
        number = 1 + max(c.number for c in self.store.list_candidates(self.name))
        out = job_dir / "candidates" / name / "model"
        self.store.add_candidate(job=self.name, name=name, number=number,
                                 algorithm="LightGBM", family=student.FAMILY,
                                 params=dict(plan.params, distilled_from=teacher,
                                             min_synthetic=plan.min_synthetic),
                                 source=SOURCE, status=st.CANDIDATE_IN_PROGRESS,
                                 trained_on=SOURCE)
        self._phase(st.TRAINING_MODELS, DISTILLING)
        task = TrialTask(name, student.FAMILY, dict(plan.params), str(out),
                         soft_end, hard_end, number, distill_of={
                             "teacher": teacher, "teacher_dir": row.artifact_dir,
                             "min_synthetic": plan.min_synthetic})
        return self._await_one(task, prepared, progress, hard_end)
