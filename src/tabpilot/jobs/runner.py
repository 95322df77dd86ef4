"""Run one AutoML job: validate, analyse, search, and always leave a usable result.

The time limit is hard. Trials are told to stop fitting a margin before it (keeping what
they learned), killed just after it, and the job is finalised in well under a second.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabpilot.artifacts.store import ArtifactStore
from tabpilot.artifacts.store import for_workspace as artifact_store
from tabpilot.config import JobRequest
from tabpilot.data import sampling
from tabpilot.data.prepare import Prepared, prepare, read_training_data
from tabpilot.data.split import CV_MAX_ROWS, Split, holdout_fraction, make_split, split_words
from tabpilot.errors import TargetError
from tabpilot.execution import Executor, TrialContext, TrialResult
from tabpilot.execution.select import make_executor
from tabpilot.jobs import admission, reporting, selection, shares, stacking
from tabpilot.jobs import progress as phases
from tabpilot.jobs import status as st
from tabpilot.jobs.creating import Creating
from tabpilot.jobs.distilling import Distilling
from tabpilot.jobs.ensembling import FAST_PACKAGE_SECONDS, Ensembling
from tabpilot.jobs.finishing import Finishing
from tabpilot.jobs.heartbeat import Heartbeat
from tabpilot.jobs.interrupt import Interrupt
from tabpilot.jobs.progress import Progress
from tabpilot.jobs.refits import Refits
from tabpilot.jobs.shares import finalisation_margin
from tabpilot.jobs.stacking import Stacking
from tabpilot.jobs.trials import Previous, Trials
from tabpilot.jobs.views import leaderboard
from tabpilot.reports import definitions
from tabpilot.reports.candidate import save_validation_data
from tabpilot.search import Proposal
from tabpilot.store import Store

log = logging.getLogger("tabpilot.jobs")

INTERRUPTED = "stopped by the user (interrupt)"
STOP_POLL_SECONDS = 0.5
MIN_TRIAL_SECONDS = 2.0
# tests only: "PHASE:SECONDS" pauses the job before that phase (see _test_pause)
TEST_PAUSE = "TABPILOT_TEST_PAUSE_BEFORE"


def new_job_name() -> str:
    return f"tp-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


class JobRunner(Creating, Trials, Refits, Stacking, Ensembling, Distilling, Finishing):
    """Runs a job in this process; trials run in the executor's processes."""

    def __init__(self, request: JobRequest, workspace: Path, store: Store | None = None,
                 executor: Executor | str | None = None,
                 on_progress: Callable[[Progress], None] | None = None,
                 adopt: bool = False, previous: Previous | None = None,
                 artifacts: ArtifactStore | None = None) -> None:
        """`adopt`: the job's row exists already (created by the HTTP API when it accepted
        the request); this runner takes it over instead of creating it. `previous`: the
        job ended Failed or Stopped and this runner resumes it (jobs/resume.py).
        `artifacts`: where the ended job is published (default: $TABPILOT_ARTIFACTS, else
        the workspace itself, where it was written: nothing to publish)."""
        self.request = request
        self.adopt = adopt
        self.previous = previous
        self.workspace = workspace
        self._store = store
        self.n_workers = request.n_workers or max(1, min(os.cpu_count() or 1, 8))
        # an Executor as given, else by name: local, ray, ray://HOST:PORT, auto
        # (execution/select.py; default $TABPILOT_EXECUTOR, else local)
        self.executor = make_executor(executor, request.n_workers, self.n_workers)
        self.on_progress = on_progress or (lambda p: None)
        self.name = request.name or new_job_name()
        self.interrupt = Interrupt()  # Ctrl-C while the job runs: a stop request
        self._heartbeat: Heartbeat | None = None  # started once the job's row exists
        self._compile_s: dict[str, float] = {}  # candidates' compile estimates (shares)
        self.artifacts = artifacts or artifact_store(workspace)
        self.sample: sampling.Sample | None = None  # a Parquet dataset's sample, when read
        self.read_seconds = 0.0  # reading and preparing the table, without one-time costs
        # a Ray trial hands its files back through it (execution/handback.py)
        self.executor.hand_back_through(self.artifacts, workspace)

    @property
    def store(self) -> Store:
        # created once the input is known good: a refused run leaves no workspace behind
        if self._store is None:
            self._store = Store.for_workspace(self.workspace)
        return self._store

    # -- validation: everything that can fail on bad input happens before anything is saved
    def _load(self, source: Any) -> tuple[Prepared, int | None, str]:
        if not self.adopt and self.previous is None:  # looked up without creating the
            # workspace's database
            (self._store or Store.for_workspace(self.workspace, create=False)
             ).ensure_new_job(self.name)
        r = self.request
        uri = "<DataFrame>" if isinstance(source, pd.DataFrame) else str(source)
        table, started = source, time.time()
        if sampling.is_dataset(source):  # Parquet: the largest stratified sample that fits
            table, self.sample = sampling.read_dataset(source, r.target, r.problem_type, r.seed)
        df, n_valid = read_training_data(table, r.target, r.na_values, r.validation_data)
        del table
        prepared = prepare(df, r.target, r.problem_type, r.metric, r.sample_weight,
                           r.feature_types, r.text_column)
        self.read_seconds = time.time() - started
        n = len(prepared.y)
        holdout = r.n_folds == 1 or (r.n_folds is None and n >= CV_MAX_ROWS)
        if self.sample is not None and self.sample.sampled and holdout and not n_valid:
            # (make_split's test_size rounds up); `_record_split` records the split's own count
            self.sample.search_rows = n - int(np.ceil(n * holdout_fraction(n, r.validation_fraction)))
        if n_valid and prepared.problem_type.is_classification:
            seen = np.unique(prepared.y[: len(prepared.y) - n_valid])
            if len(seen) < len(prepared.classes or []):
                raise TargetError("the validation data holds classes that the training data "
                                  "lacks; give training data with every class")
        return prepared, n_valid, uri

    def run(self, source: Any) -> str:
        if self.adopt:  # the row exists: alive from now on, while the data loads too
            self._start_heartbeat()
        try:
            return self._run(source)
        finally:
            if self._heartbeat is not None:
                self._heartbeat.stop()

    def _start_heartbeat(self) -> None:
        if self._heartbeat is None:
            self._heartbeat = Heartbeat(self.store, self.name).start()

    def _run(self, source: Any) -> str:
        t0 = time.time()
        self.artifacts.check()  # an unreachable S3 is one line now, not after the training
        prepared, n_valid, uri = self._load(source)
        loaded = time.time() - t0
        if self.previous is None:  # a resumed job has its candidates already
            self._check_time_limit(prepared, self.read_seconds, loaded)
        self.executor.warm_up()  # the input is good: the trials' imports overlap the analysis
        with self._slot():
            t0 = time.time() - loaded  # reading the data counts; waiting for a slot does not
            return self._train(source, prepared, n_valid, uri, t0)

    def _slot(self) -> AbstractContextManager[Any]:
        """One of the workspace's job slots (jobs/admission.py), held while the job trains;
        an API worker holds its job's slot already (it reads the data inside it)."""
        if self.adopt:
            return nullcontext()
        return admission.slot(self.workspace, self.name, on_wait=lambda ahead: log.warning(
            "job %s waits for a slot: %d job(s) ahead of it and %d running "
            "(TABPILOT_MAX_CONCURRENT_JOBS)", self.name, ahead,
            admission.max_concurrent_jobs()))

    def _train(self, source: Any, prepared: Prepared, n_valid: int | None, uri: str,
               t0: float) -> str:
        job_dir = self.workspace / "jobs" / self.name
        self._t0 = t0
        self.progress = Progress(self.name, st.IN_PROGRESS, st.ANALYZING, time.time() - t0,
                                 self.request.time_limit, metric=prepared.metric.name,
                                 phase=st.ANALYZING)
        self._create(prepared, uri, job_dir, source)
        try:
            with self.interrupt.stops_the_job():
                if self.request.generate_candidates_only:
                    outcome = self._definitions_only(prepared, n_valid, job_dir, t0)
                else:
                    outcome = self._search(prepared, n_valid, job_dir, t0)
                    if outcome[0] == st.COMPLETED:
                        outcome = self._reports(job_dir, outcome, t0)
        except BaseException as exc:
            self.executor.shutdown()
            if isinstance(exc, KeyboardInterrupt):  # a second Ctrl-C
                self._finalize(job_dir, st.STOPPED, st.STOPPED, INTERRUPTED, t0)
                return self.name
            self._finalize(job_dir, st.FAILED, st.FAILED, f"{type(exc).__name__}: {exc}", t0)
            raise
        self._finalize(job_dir, *outcome, t0=t0)
        return self.name

    def _phase(self, secondary: str | None, phase: str | None = None) -> None:
        """A new phase: the store gets Autopilot's secondary status, the caller's
        `on_progress` the finer phase (Ensembling is TrainingModels in the store)."""
        p = self.progress
        if secondary is not None and secondary != p.secondary_status:
            self.store.update_job(self.name, secondary_status=secondary)
            p.secondary_status = secondary
        p.phase = phase or p.secondary_status
        p.elapsed = time.time() - self._t0
        self.on_progress(p)

    def _split(self, prepared: Prepared, n_valid: int | None) -> Split:
        r = self.request
        # hpo tunes single models on a holdout; ensembling bags them (k-fold on small data)
        n_folds = r.n_folds if r.n_folds is not None or self.mode == "ensembling" else 1
        if n_folds is None and r.is_text:
            # text candidates featurise hundreds of thousands of n-grams per trial: a
            # holdout (the ensemble chosen on it) leaves time for every family, where
            # k-fold bags of them would not finish within a short limit
            n_folds = 1
        split = make_split(prepared.y, prepared.problem_type.is_classification,
                           r.validation_fraction, n_folds, r.seed, n_valid)
        self._n_folds = len(split.folds) if split.is_cv else 1  # as candidate code redoes it
        given = bool(n_valid) or (r.n_folds is not None and (
            split.is_cv or r.validation_fraction is not None))
        words = split_words(split, self._split_why(split.is_cv, n_valid, len(prepared.y)),
                            r.validation_fraction is not None)
        self.progress.validation = {"split": words, "given": given}
        self._record_split(split, words)
        return split

    def _split_why(self, is_cv: bool, n_valid: int | None, n: int) -> str:
        """Why the job validates as it does: given, or the rule that chose it."""
        r = self.request
        if n_valid:
            return "a validation table given"
        if r.n_folds is not None:
            return "folds given"
        if self.mode != "ensembling":
            return f"{self.mode} mode tunes on a holdout"
        if r.is_text:
            return "a text job: a holdout leaves time for every text family"
        return f"{n:,} rows, under {CV_MAX_ROWS:,}" if is_cv else \
            f"{n:,} rows, {CV_MAX_ROWS:,} or more"

    def _record_split(self, split: Split, words: str) -> None:
        """The split in the job's stats, in one write: its words (describe's
        InferenceReasons) and a sampled dataset's sizes as the split made them
        (describe's TrainingSample)."""
        stats = dict(self.store.get_job(self.name).stats or {})
        stats["reasons"] = dict(stats.get("reasons") or {}, validation=words)
        if self.sample is not None and self.sample.sampled:
            self.sample.search_rows = len(split.training_rows())
            stats["sample"] = self.sample.describe()
        self.store.update_job(self.name, stats=stats)

    def _families(self) -> list[str] | None:
        """The families the search tries: the request's, else a text job's text families
        (tabpilot.text), else the tabular default (None)."""
        if self.request.algorithms or not self.request.is_text:
            return self.request.algorithms
        from tabpilot.text import TEXT_FAMILIES

        return list(TEXT_FAMILIES)

    def _n_threads(self) -> int:
        return max(1, (os.cpu_count() or 1) // self.n_workers)

    def _definitions_only(self, prepared: Prepared, n_valid: int | None, job_dir: Path,
                          t0: float) -> tuple[str, str, str | None]:
        """Autopilot's GenerateCandidateDefinitionsOnly: both notebooks, nothing trained."""
        r = self.request
        self._split(prepared, n_valid)
        strategy = self._strategy(prepared)
        proposals = [strategy.ask() for _ in range(strategy.n_portfolio)]
        definitions.save_definitions(job_dir, definitions.portfolio_definitions(proposals),
                                     self._n_folds, self._n_threads(), trained=False)
        definitions.write_notebook(job_dir)
        end = t0 + r.time_limit - finalisation_margin(r.time_limit)
        self._report_outcome = reporting.write_reports(
            job_dir, [], prepared.metric.name, end, lambda status: None,
            self._stop_requested, "the job's time limit")
        return st.COMPLETED, st.CANDIDATE_DEFINITIONS_GENERATED, None

    def _search(self, prepared: Prepared, n_valid: int | None, job_dir: Path, t0: float
                ) -> tuple[str, str, str | None]:
        r = self.request
        self._phase(st.FEATURE_ENGINEERING)
        # hpo tunes single models on a holdout; ensembling bags them (k-fold on small data)
        ensemble = r.ensemble and self.mode == "ensembling"
        stack = stacking.resolve(r.stacking, self.mode, r.max_latency_ms)
        distill = r.distill and (ensemble or stack)  # a student for an ensemble or a stack
        split = self._split(prepared, n_valid)
        save_validation_data(job_dir, prepared.X, prepared.y, split.validation_rows(), r.seed)
        n_threads = self._n_threads()
        self.executor.start(TrialContext(
            X=prepared.X, y=prepared.y, split=split, schema=prepared.schema,
            problem_type=prepared.problem_type, metric=prepared.metric,
            classes=prepared.classes, job_name=self.name, target=r.target,
            weights=prepared.weights, n_threads=n_threads, seed=r.seed))
        previous = self.previous or Previous([], 0, {})
        strategy = self._strategy(prepared, previous)
        limit = r.time_limit
        deadline = t0 + limit - reporting.report_seconds(limit)  # the reports' share comes after
        margin = finalisation_margin(limit)
        # the stack's and the ensemble's shares follow the candidates they would load
        n_valid, n_classes = len(split.validation_rows()), len(prepared.classes or [])
        ensemble_share, level2_reserve, distill_share, shares_at = 0.0, 0.0, 0.0, -1
        # a text job tries a few costly featurisations rather than many cheap fits: each
        # of its trials may take half the limit (two rounds of them on two workers)
        per_trial = r.per_trial_time_limit or max(10.0, (0.5 if r.is_text else 0.25) * limit)
        kill_at = t0 + limit * 1.05
        proposals: dict[str, Proposal] = {}
        self._results: dict[str, TrialResult] = dict(previous.results)
        self._ensemble_checked_at = -1
        progress = self.progress
        if self.previous is not None:
            self._progress_so_far(progress)
        self._phase(st.MODEL_TUNING)
        refit = split.kind == "holdout"
        collapse = split.is_cv and r.max_latency_ms is not None  # a too-slow bag: refit-full
        # without a bound, the slow best candidate's bags refit for the fast ensemble; on
        # a holdout, the ensemble's members refit on every training row (refits.py)
        collapse_members = ensemble and r.max_latency_ms is None and (
            split.is_cv and r.selection == "balanced" or split.kind == "holdout")
        collapse_reserve = 0.0
        submitted, last_stop_check = len(previous.history), 0.0
        first_trial = submitted
        while True:
            now = time.time()
            if now - last_stop_check >= STOP_POLL_SECONDS:
                last_stop_check = now
                if self._stop_requested():
                    # keep the trials that finished but were not collected yet
                    for result in self.executor.poll(timeout=0):
                        strategy.tell(proposals[result.candidate].number, None)
                        self._record(result, prepared, progress)
                    return self._stopped()
            if shares_at != progress.done:
                shares_at = progress.done
                board = leaderboard(self.store, self.name)  # read once for the shares
                ensemble_share, level2_reserve = self._level2_shares(
                    board, limit, ensemble, stack, n_valid, n_classes)
                distill_share = self._distill_share(board, prepared, split, level2_reserve) \
                    if distill else 0.0
                collapse_reserve = self._collapse_reserve(board, len(split.folds), limit) \
                    if collapse_members else 0.0
            # a holdout keeps the time of the single model's refit or of the ensemble's
            # members', the longer; once the ensemble wins, of the members'
            reserve = max(self._refit_seconds(progress, split.holdout_share),
                          collapse_reserve) if refit else \
                self._refit_full_seconds(prepared, len(split.folds)) if collapse else \
                collapse_reserve
            soft_end = deadline - margin - level2_reserve - distill_share - reserve
            out_of_candidates = r.max_candidates is not None and submitted >= r.max_candidates
            out_of_time = soft_end - now < MIN_TRIAL_SECONDS
            if out_of_time and refit and reserve and ensemble and \
                    self._ensemble_wins(prepared, split, job_dir, progress):
                # the ensemble will be the model: the time kept for a refit buys more trials
                refit, reserve = False, collapse_reserve
                soft_end = deadline - margin - level2_reserve - distill_share - reserve
                out_of_time = soft_end - now < MIN_TRIAL_SECONDS
            if out_of_time and progress.done == 0 and submitted == first_trial \
                    and not self.executor.running() and deadline - margin > now:
                # a job always trains a model: its first trial (the portfolio's first, a
                # cheap default) gets whatever time is left, reserves notwithstanding
                self._submit(strategy, proposals, job_dir, now, deadline - margin, per_trial,
                             kill_at)
                submitted += 1
            while self.executor.free_slots() > 0 and not out_of_candidates and not out_of_time:
                self._submit(strategy, proposals, job_dir, now, soft_end, per_trial, kill_at)
                submitted += 1
                out_of_candidates = r.max_candidates is not None and submitted >= r.max_candidates
            for result in self.executor.poll(timeout=0.2):
                strategy.tell(proposals[result.candidate].number,
                              result.objective if result.status == st.COMPLETED else None)
                self._record(result, prepared, progress)
            progress.elapsed = time.time() - t0
            progress.running = len(self.executor.running())
            self.on_progress(progress)
            if not self.executor.running() and (out_of_candidates or out_of_time):
                break
            if time.time() >= kill_at:
                return st.COMPLETED, st.MAX_RUNTIME, None
        secondary = st.MAX_CANDIDATES if out_of_candidates else st.MAX_RUNTIME
        _test_pause("ensemble", job_dir, self._stop_requested)
        # k-fold bags' refits keep their time from the stack and the ensemble (they buy the
        # default model's speed); a holdout's refits take whatever time the stack and the
        # ensemble, which must be built first, leave (womens_clothing_reviews at 300 s:
        # its text trials, a minute each, ran past the search's end, and the time kept
        # for the refits left the stack and the ensemble none)
        level2_gives = collapse_reserve if split.is_cv else 0.0
        # the stack leaves the ensemble half its share; the ensemble (whose pool holds the
        # stack) may use the finalisation margin: finalising takes well under a second
        if stack:
            self._phase(st.TRAINING_MODELS, phases.STACKING)
            self._stack(prepared, split, job_dir, progress,
                        deadline - margin - ensemble_share / 2 - distill_share - level2_gives)
        if ensemble:  # these two tell their phase once they know they have the time
            self._ensemble(prepared, split, job_dir, progress,
                           deadline - distill_share - level2_gives)
            # the teacher is known: a distillation that cannot fit leaves its time to these
            distill_share = self._distill_kept(prepared, split, distill_share)
            if collapse_members:
                if self._collapse_members(prepared, split, job_dir, progress,
                                          deadline - distill_share - 2 * FAST_PACKAGE_SECONDS,
                                          kill_at):
                    return self._stopped()
                self._full_stacks(prepared, split, job_dir,
                                  deadline - distill_share - FAST_PACKAGE_SECONDS)
                self._full_ensemble(prepared, split, job_dir, progress, deadline - distill_share)
            # one within the fast budget, when the most accurate answers slower
            self._fast_ensemble(prepared, split, job_dir, progress, deadline - distill_share)
        if distill and self._distill(prepared, split, job_dir, progress, deadline - margin,
                                     deadline):
            return self._stopped()
        # on a holdout whose most accurate candidate is a single model, the candidate the
        # job will hand out (selection.for_request) is refit when it is a single model
        # trained without the holdout (an ensemble's or a stack's members were refit as
        # twins already, `_collapse_members`; a single model taken over them is not: its
        # refit's latency could change the choice, and the job hand out an unrefit one)
        single = split.kind == "holdout" and \
            selection.best_is_single(leaderboard(self.store, self.name))
        handed = selection.for_request(self._selection_board(job_dir), r)[0] if single else None
        if handed in self._results or collapse:
            self._phase(st.TRAINING_MODELS, phases.REFITTING)
        if handed in self._results:
            progress.best_candidate = handed
            if self._refit_best(progress, deadline - margin, kill_at, split.holdout_share):
                return self._stopped()
        if collapse and self._refit_full(prepared, split, job_dir, progress, deadline - margin,
                                         kill_at):
            return self._stopped()
        return st.COMPLETED, secondary, None

    def _level2_shares(self, board: pd.DataFrame, limit: float, ensemble: bool, stack: bool,
                       n_valid: int, n_classes: int) -> tuple[float, float]:
        """The ensemble's share and the stack's plus the ensemble's, from the members they
        would load: the best candidates' bytes (the stack's: the best of each family), and
        the compiles of those whose trial ran out of time before compiling them (read once
        per candidate: a finished candidate's model directory does not change)."""
        sizes = board["model_bytes"].fillna(0).astype(float)
        folder = self.workspace / "jobs" / self.name / "candidates"
        known = self._compile_s
        new = [n for n in board["candidate"] if n not in known]
        known.update(zip(new, shares.compile_seconds([folder / n / "model" for n in new]),
                         strict=True))
        compiles = [known[n] for n in board["candidate"]]
        ensemble_s = shares.ensemble_seconds(limit, sizes.tolist(), n_valid, compiles) \
            if ensemble else 0.0
        firsts = (~board["algorithm"].duplicated()).tolist()
        per_family = sizes[firsts].tolist()
        stack_s = shares.stack_seconds(limit, per_family, n_valid, n_classes,
                                       [c for c, first in zip(compiles, firsts, strict=True) if first]
                                       ) if stack else 0.0
        return ensemble_s, ensemble_s + stack_s

    def _ranked(self, job_dir: Path) -> list[tuple[str, Path]]:
        """Completed candidates, best first, with their folders."""
        board = leaderboard(self.store, self.name)
        return [(n, job_dir / "candidates" / n) for n in board["candidate"]]

    def _stop_requested(self) -> bool:
        return self.interrupt.requested or self.store.get_job(self.name).status == st.STOPPING

    def _stopped(self) -> tuple[str, str, str]:
        """The outcome of a job stopped on request: by Ctrl-C or by `tabpilot stop`."""
        return st.STOPPED, st.STOPPED, INTERRUPTED if self.interrupt.requested \
            else "stopped by request"

def _test_pause(phase: str, job_dir: Path, stop_requested: Callable[[], bool]) -> None:
    """For tests only, and a no-op unless TABPILOT_TEST_PAUSE_BEFORE="PHASE:SECONDS" names
    this phase: wait up to SECONDS (or until a stop request) before it, leaving the file
    `.test-paused-PHASE` in the job folder, so that a test can stop or kill the job in a
    phase that is otherwise too short to hit."""
    spec = os.environ.get(TEST_PAUSE)
    if not spec or spec.partition(":")[0] != phase:
        return
    (job_dir / f".test-paused-{phase}").touch()
    end = time.time() + float(spec.partition(":")[2] or 10)
    while time.time() < end and not stop_requested():
        time.sleep(0.1)
