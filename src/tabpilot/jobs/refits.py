"""Retraining on every row, for the job runner: the best holdout candidate refit on train +
holdout; k-fold bags collapsed into one `-full` model each: the bag that a latency bound
rules out, or, without a bound, the bags of a most accurate candidate that answers slower
than the fast budget (the fast ensemble then selects from them); and, on a holdout, the
most accurate ensemble's members refit on train + holdout as `-full` twins (the `-full`
ensemble holds them).

A mixin of JobRunner (it uses the runner's store, executor, request and trial results).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from tabpilot.data.prepare import Prepared
from tabpilot.execution import TrialResult, TrialTask
from tabpilot.execution.trial import PACKAGING_SECONDS, VALIDATION_PREDICTIONS
from tabpilot.jobs import ensembling, selection, stacking
from tabpilot.jobs import progress as phases
from tabpilot.jobs import status as st
from tabpilot.jobs.views import leaderboard

if TYPE_CHECKING:
    from tabpilot.jobs.progress import Progress

log = logging.getLogger("tabpilot.jobs")

# Without a bound, the bags of the most accurate candidate collapsed into `-full` models:
# while the search runs, time is kept for this many (the best single candidates'), at most
# this share of the time limit; after it, as many are refit as the time left allows
COLLAPSE_MEMBERS = 4
COLLAPSE_SHARE = 0.1


# packaging one refit model: loading, checking and timing it, besides its share of the
# bag's saving and compiling (one model of the bag's k)
REFIT_PACKAGE_SECONDS = 0.2


def _refit_seconds_of(bag: TrialResult, n_folds: int, holdout_share: float = 0.0) -> float:
    """About one fit of a bag's pipeline on every row and the packaging of one model.

    The fit: one of the bag's k fold fits on k / (k - 1) times its rows, its k fits /
    (k - 1); on a holdout (k = 1), the model's fit on 1 / (1 - `holdout_share`) times its
    rows. The packaging: the bag's / k, as a bag saves and compiles k models (measured on
    the 60 s jobs of bench.default_model: a refit's packaging took 0.1-0.6 s where its
    bag's took 0.2-3.2 s, about 0.1 s + the bag's / 5 with k = 5), and at least the
    PACKAGING_SECONDS the trial keeps after the fit for saving and timing: counted as less,
    a refit started with just its estimate left ran out of time at the end of its fit
    (ames_housing and hpc_jobs at 60 s: a random forest's and a CatBoost bag's, 3.1 and
    3.6 s into fits of about 3.5)."""
    k = max(n_folds, 1)
    fit = bag.fit_seconds / (k - 1) if k > 1 else bag.fit_seconds / (1 - holdout_share)
    return fit + max(PACKAGING_SECONDS,
                     REFIT_PACKAGE_SECONDS + bag.details.get("package_seconds", 1.0) / k)


def _collapse_seconds(bag: TrialResult, n_folds: int) -> float:
    """The time to keep for collapsing a bag: its refit's estimate, with a margin (on a
    holdout, the margin is the refit's larger set of rows)."""
    return bag.fit_seconds / max(n_folds - 1, 1) * 0.25 + _refit_seconds_of(bag, n_folds)


def collapse_order(top: str, algorithms: dict[str, str], params: dict[str, dict],
                   gain: dict[str, float] | None = None) -> list[str]:
    """The bags to collapse for the most accurate candidate `top`, in order: an ensemble's
    members by weight, heaviest first, a stack standing for all of its own members; a
    stack or a single bag alone. Not the bags never collapsed (selection.KEEP_BAGGED), nor
    those collapsed already. `algorithms`: the completed candidates' (the leaderboard's);
    `params`: the candidates' parameters. With `gain` (a bag's milliseconds a row per
    second of its refit), the most gainful first: the twins that take the refits' places
    score as the bags do, so what the time left buys is speed."""
    weights = params[top].get("members", {}) if algorithms[top] == "Ensemble" else {top: 1.0}
    bags: list[str] = []
    for name, _ in sorted(weights.items(), key=lambda kv: -kv[1]):
        inner = params[name].get("members", []) if algorithms.get(name) == "Stacking" \
            else [name]
        bags += [n for n in inner if n not in bags and algorithms.get(n) is not None
                 and algorithms[n] not in (*selection.COMBINED, *selection.KEEP_BAGGED)
                 and f"{n}{selection.FULL_SUFFIX}" not in algorithms
                 and not n.endswith(selection.FULL_SUFFIX)]
    return bags if gain is None else sorted(bags, key=lambda n: -gain.get(n, 0.0))


def stack_twins_seconds(top: str, algorithms: dict[str, str], params: dict[str, dict]
                        ) -> float:
    """The time the twins of the stacks in the most accurate candidate `top` (itself, or
    its ensemble's members) take to package once their members are refit
    (stacking.Stacking._full_stacks). A bag reached only through a stack answers faster
    only in that stack's twin, so the refits leave this time to it."""
    names = params[top].get("members", {}) if algorithms[top] == "Ensemble" else [top]
    return sum(stacking.packaging_seconds(len(params[n].get("members", [])))
               for n in names if algorithms.get(n) == "Stacking")


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
        if row.trained_on != "train":
            return False  # refit on every row already (a `-full` twin)
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
        return _collapse_seconds(best, n_folds)

    def _collapse_reserve(self, board: pd.DataFrame, n_folds: int, limit: float) -> float:
        """Time to keep, without a bound, for refitting the models the job's ensemble will
        likely hold (the best COLLAPSE_MEMBERS single candidates) on every row, at most
        COLLAPSE_SHARE of the time limit: `_collapse_members` refits as many as the time
        left allows. On a holdout (`n_folds` 1), as many at once as the executor has
        workers; k-fold bags keep the time of one refit after another, as they did before
        their refits ran in parallel (what that saves goes to the steps after them)."""
        singles = board[~board["algorithm"].isin(selection.COMBINED)]
        best = [self._results[n] for n in singles["candidate"][:COLLAPSE_MEMBERS]
                if n in self._results]
        at_once = 1 if n_folds > 1 else max(1, min(self.n_workers, len(best)))
        return min(sum(_collapse_seconds(r, n_folds) for r in best) / at_once,
                   COLLAPSE_SHARE * limit)

    def _collapse_members(self, prepared: Prepared, split, job_dir: Path, progress: Progress,
                          soft_end: float, kill_at: float) -> bool:
        """Without a bound, refit the most accurate candidate's models (an ensemble's
        members, a stack's standing for all of its own) on every row as `-full` twins,
        while the time left, less what the stacks' twins need (`stack_twins_seconds`),
        allows; as many at once as the executor has slots. The stacks' twins, the `-full`
        ensemble and the fast ensemble, built next, hold them. True when a stop request
        arrived.

        - k-fold: when the most accurate answers one row slower than the fast budget
          (ensembling.FAST_LATENCY_MS), its bags collapse into one model each, the most
          latency saved per second of refit first (`collapse_order`): what they buy is
          speed (a twin scores as its bag).
        - holdout: when the most accurate is an ensemble or a stack, its heaviest members
          first: what they buy is accuracy, each model learning from the holdout's rows
          too (AutoGluon's refit_full). Default LightGBM early-stopped on the holdout,
          then refit with its rows, scored 2.2 % lower RMSE on bike_sharing_hourly's test
          rows, 1.0 % on california_housing's, 0.4 % on diamonds' (bench.automl's split,
          3 seeds). A single model is refit in place at the job's end (`_refit_best`)."""
        board = leaderboard(self.store, self.name)
        if board.empty or split.is_cv and selection.within(board["latency_ms_p50"].iloc[0],
                                                           ensembling.FAST_LATENCY_MS):
            return False
        if not split.is_cv and selection.best_is_single(board):
            return False  # a single model: the job's end refits it in place (`_refit_best`)
        rows = {c.name: c for c in self.store.list_candidates(self.name)}
        algorithms = dict(zip(board["candidate"], board["algorithm"], strict=True))
        k = len(split.folds)
        gain = {n: ms / max(_refit_seconds_of(self._results[n], k), 1e-3) for n, ms in
                zip(board["candidate"], board["latency_ms_p50"], strict=True)
                if n in self._results and pd.notna(ms)} if split.is_cv else None
        top, params = str(board["candidate"].iloc[0]), {n: r.params or {} for n, r in rows.items()}
        bags = collapse_order(top, algorithms, params, gain)
        if bags:
            self._phase(st.TRAINING_MODELS, phases.REFITTING)
        soft_end -= stack_twins_seconds(top, algorithms, params)
        return self._await_all(
            (self._collapse_task(bag, split, job_dir, soft_end, kill_at) for bag in bags),
            prepared, progress, kill_at)

    def _refit_full(self, prepared: Prepared, split, job_dir: Path, progress: Progress,
                    soft_end: float, kill_at: float) -> bool:
        """Collapse the best k-fold bag that the latency bound rules out into one model
        refit on every row, as a candidate of its own. True when a stop request arrived."""
        bag = selection.refit_full_target(leaderboard(self.store, self.name),
                                          self.request.max_latency_ms or 0.0, len(split.folds))
        return bag is not None and self._collapse(bag, prepared, split, job_dir, progress,
                                                  soft_end, kill_at)

    def _collapse(self, bag: str, prepared: Prepared, split, job_dir: Path,
                  progress: Progress, soft_end: float, kill_at: float) -> bool:
        """Refit `bag` on every row as the candidate `{bag}-full` (`_collapse_task`), when
        the time left allows. True when a stop request arrived."""
        task = self._collapse_task(bag, split, job_dir, soft_end, kill_at)
        return task is not None and self._await_one(task, prepared, progress, kill_at)

    def _collapse_task(self, bag: str, split, job_dir: Path, soft_end: float,
                       kill_at: float) -> TrialTask | None:
        """The task refitting the candidate `bag` (a k-fold bag, or a model trained
        without the holdout) on every training row as the candidate `{bag}-full`, added to
        the leaderboard; None when the time left is shorter than its estimate.

        The refit keeps its parent's validation scores and predictions. Each out-of-fold
        (or holdout) prediction is one model's, fitted without the rows it predicts, so
        those scores estimate one model of the pipeline; one fitted on all the rows is
        expected to do at least as well on new rows. What a bag adds, the average of its
        k models, shows in neither score (the leaderboard says TrainedOn: refit-full).
        """
        k = len(split.folds)
        parent = self._results.get(bag)
        if parent is None or parent.details.get("train_rows"):
            return None  # a subsample's model: every row would cost too much
        needed = _refit_seconds_of(parent, k, split.holdout_share)
        if soft_end - time.time() < needed:
            log.info("no time left to refit %s on every row (%.1fs needed)", bag, needed)
            return None
        row = self.store.get_candidate(self.name, bag)
        name = f"{bag}{selection.FULL_SUFFIX}"
        number = 1 + max(c.number for c in self.store.list_candidates(self.name))
        out = job_dir / "candidates" / name / "model"
        out.parent.mkdir(parents=True, exist_ok=True)
        # the predictions its (inherited) scores come from; reports and ensembles read them
        shutil.copyfile(Path(parent.artifact_dir).parent / VALIDATION_PREDICTIONS,
                        out.parent / VALIDATION_PREDICTIONS)
        self.store.add_candidate(job=self.name, name=name, number=number,
                                 algorithm=row.algorithm, family=row.family, params=row.params,
                                 source=selection.REFIT_FULL, status=st.CANDIDATE_IN_PROGRESS,
                                 trained_on=selection.REFIT_FULL)
        self.store.update_job(self.name, secondary_status=st.TRAINING_MODELS)
        return TrialTask(name, row.family, row.params, str(out), soft_end, kill_at, number,
                         refit_of={"candidate": bag, "infos": parent.details["infos"],
                                   "objective": parent.objective, "metrics": parent.metrics,
                                   "threshold": parent.threshold})

    def _await_all(self, tasks: Iterator[TrialTask | None], prepared: Prepared,
                   progress: Progress, kill_at: float) -> bool:
        """Run `tasks` (None: skipped), each as a slot frees, to their end and record their
        candidates. A task is made when it is submitted, so its time check sees the time
        left then. True when a stop request arrived meanwhile."""
        pending = iter(tasks)
        more = True
        while more or self.executor.running():
            while more and self.executor.free_slots() > 0:
                task = next(pending, False)
                if task is False:
                    more = False
                elif task is not None:
                    self.executor.submit(task)
            if self._stop_requested():
                return True
            for result in self.executor.poll(timeout=0.2):
                self._record(result, prepared, progress)
            if time.time() >= kill_at:
                break
        return False

    def _await_one(self, task: TrialTask, prepared: Prepared, progress: Progress,
                   kill_at: float) -> bool:
        """Run one task in the executor to its end and record its candidate. True when a
        stop request arrived meanwhile (finalising then stops the task, marked Stopped)."""
        return self._await_all(iter([task]), prepared, progress, kill_at)
