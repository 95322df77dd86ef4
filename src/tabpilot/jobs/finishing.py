"""The job's end: the reports in their time share; then choose what to hand out, prune,
write the leaderboard and the candidate definitions, and record the final status,
whatever way the job got there.

A mixin of JobRunner (its store, executor, request, results and job name).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import pandas as pd

from tabpilot.jobs import publishing, reporting, selection, spread
from tabpilot.jobs import status as st
from tabpilot.jobs.progress import Progress
from tabpilot.jobs.shares import finalisation_margin
from tabpilot.jobs.views import leaderboard
from tabpilot.reports import definitions
from tabpilot.tasks import ProblemType

log = logging.getLogger("tabpilot.jobs")


class Finishing:
    def _reports(self, job_dir: Path, outcome: tuple[str, str, str | None], t0: float
                 ) -> tuple[str, str, str | None]:
        """Explanations and insights of the kept candidates, best first, in their time share.

        A report that fails marks the job with Autopilot's ExplainabilityError or
        ModelInsightsError; the job still completes with its candidates and leaderboard.
        """
        limit = self.request.time_limit
        deadline = min(time.time() + reporting.report_seconds(limit),
                       t0 + limit - finalisation_margin(limit))
        names = [n for n, _ in self._ranked(job_dir)][: self.request.keep_candidates]
        report = reporting.write_reports(
            job_dir, names, self.store.get_job(self.name).metric or "", deadline,
            self._phase,
            self._stop_requested, f"{reporting.REPORT_SHARE:.0%} of the time limit, at most "
                                  f"{reporting.REPORT_MAX_SECONDS:g}s")
        self._report_outcome = report
        if report.stopped:
            return self._stopped()
        if report.failures:
            return outcome[0], report.failures[0][0], outcome[2]
        return outcome

    # -- the trial loop ---------------------------------------------------------------

    def _finalize(self, job_dir: Path, status: str, secondary: str, reason: str | None,
                  t0: float) -> None:
        """The job's one way out: whatever it ended with, its row ends with that status,
        and (in the same store update) no candidate of it stays InProgress."""
        # kills whatever trial still runs (none after a first shutdown); their candidates
        # are closed by the status update below, whichever way the job got here
        self.executor.shutdown()
        best = note = None
        try:
            status, secondary, reason, best, note = self._wrap_up(job_dir, status, secondary,
                                                                  reason)
        except Exception as exc:  # the job must still end, and say why
            log.exception("finalising job %s failed", self.name)
            best = self.store.get_job(self.name).best_candidate  # as the search left it
            if status != st.FAILED:
                status, secondary = st.FAILED, st.FAILED
                reason = f"finalising the job failed: {type(exc).__name__}: {exc}"
        status, secondary, reason = self._publish(job_dir, status, secondary, reason)
        stats = dict(self.store.get_job(self.name).stats or {},
                     seconds=round(time.time() - t0, 3), selection_note=note)
        self.store.update_job(self.name, status=status, secondary_status=secondary,
                              failure_reason=reason, best_candidate=best, ended=time.time(),
                              stats=stats)
        progress = getattr(self, "progress", None) or Progress(
            self.name, status, secondary, 0.0, self.request.time_limit)
        progress.status, progress.secondary_status, progress.phase = status, secondary, secondary
        progress.elapsed, progress.running = time.time() - t0, 0
        progress.best_candidate = best
        progress.best_value = self._objective_of(best)
        progress.failure_reason = reason
        self.on_progress(progress)

    def _publish(self, job_dir: Path, status: str, secondary: str, reason: str | None
                 ) -> tuple[str, str, str | None]:
        """The job's models, reports and notebooks to the artifact store, before its final
        status: a Completed job's best model loads on every machine that sees the status.
        A store that fails now fails a job that had completed, saying where and why."""
        try:
            publishing.publish_job(self.artifacts, self.workspace, job_dir)
        except Exception as exc:
            log.exception("publishing job %s to %s failed", self.name, self.artifacts.url)
            if status == st.COMPLETED:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                return st.FAILED, st.FAILED, (
                    f"publishing the job to the artifact store {self.artifacts.url} failed: "
                    f"{first}; its files are in {job_dir}")
        return status, secondary, reason

    def _objective_of(self, candidate: str | None) -> float | None:
        if candidate is None:
            return None
        try:
            return self.store.get_candidate(self.name, candidate).objective
        except Exception:  # the final line shows no score rather than failing the job's end
            return None

    def _wrap_up(self, job_dir: Path, status: str, secondary: str, reason: str | None
                 ) -> tuple[str, str, str | None, str | None, str | None]:
        """Choose the best, prune, write the leaderboard and definitions: the final outcome
        (status, secondary status, reason), the best candidate and the selection note."""
        board = self._selection_board(job_dir)
        if board.empty and status == st.COMPLETED and not self.request.generate_candidates_only:
            status, secondary = st.FAILED, st.FAILED
            reason = ("no candidate finished within the time limit; raise --time-limit or "
                      "check the failure reasons with `tabpilot candidates JOB`")
        best, note = selection.for_request(board, self.request)
        if best is not None and \
                self.store.get_candidate(self.name, best).trained_on == selection.REFIT_FULL:
            note = selection.joined(note, selection.refit_note(
                best, self.request.max_latency_ms is not None,
                getattr(self, "_n_folds", 1) > 1))
        if note:
            log.info(note)  # the result shows it (describe: SelectionNote)
        self._prune(board, keep={best, *board.loc[board["pareto"].astype(bool), "candidate"]})
        if not board.empty:
            board.to_csv(job_dir / "leaderboard.csv", index=False)
            self._write_definitions(job_dir, board)
        report = getattr(self, "_report_outcome", None)
        if report is not None:  # what the reports wrote, skipped and failed
            self.store.update_job(self.name, stats=dict(
                self.store.get_job(self.name).stats, reports=report.summary,
                partial_failures=[message for _, message in report.failures]))
        return status, secondary, reason, best, note

    def _selection_board(self, job_dir: Path) -> pd.DataFrame:
        """The leaderboard with the noise of its comparisons (jobs/spread.py) measured for
        the candidates the default selection might hand out instead of the most accurate,
        and kept in the job's stats so that every later reader applies the same rule."""
        board = leaderboard(self.store, self.name)
        if board.empty or self.request.selection != "balanced" or \
                self.request.max_latency_ms is not None:
            return board
        names = selection.contenders(board, str(board["candidate"].iloc[0]),
                                     selection.greater_is_better(board))
        try:
            row = self.store.get_job(self.name)
            thresholds = {c.name: c.threshold for c in self.store.list_candidates(self.name)}
            found = spread.shortfall_errors(job_dir, board, ProblemType(row.problem_type),
                                            names, thresholds)
        except Exception:  # the relative rule alone decides
            log.exception("measuring the selection's standard errors failed")
            return board
        self.store.update_job(self.name, stats={**(row.stats or {}),
                                                selection.SHORTFALL_SE: found})
        board.attrs[selection.SHORTFALL_SE] = found
        return board

    def _write_definitions(self, job_dir: Path, board: pd.DataFrame) -> None:
        """CandidateDefinitions.ipynb: every completed candidate as code that reruns it."""
        try:
            details = {n: r.details for n, r in getattr(self, "_results", {}).items()}
            found = definitions.trained_definitions(board, self.store.list_candidates(self.name),
                                                    details)
            definitions.save_definitions(job_dir, found, getattr(self, "_n_folds", 1),
                                         self._n_threads(), trained=True)
            definitions.write_notebook(job_dir)
        except Exception:  # the candidates and the leaderboard stand without it
            log.exception("writing CandidateDefinitions.ipynb failed")

    def _prune(self, board: pd.DataFrame, keep: set[str | None]) -> None:
        """Keep the model directories of the best `keep_candidates` and of `keep` (the
        chosen one and the accuracy-latency front); drop the rest."""
        for name in board["candidate"].iloc[self.request.keep_candidates:]:
            if name in keep:
                continue
            row = self.store.get_candidate(self.name, name)
            if row.artifact_dir:
                shutil.rmtree(Path(row.artifact_dir).parent, ignore_errors=True)
                self.store.update_candidate(self.name, name, artifact_dir=None)
        candidates = self.workspace / "jobs" / self.name / "candidates"
        for leftover in candidates.glob("*/.tmp-model-*"):  # saves cut short by a kill
            shutil.rmtree(leftover, ignore_errors=True)
        for row in self.store.list_candidates(self.name):
            if row.status != st.CANDIDATE_COMPLETED:
                shutil.rmtree(Path(self.workspace / "jobs" / self.name / "candidates" / row.name),
                              ignore_errors=True)
