"""The job's reports after training, within a share of its time limit.

Explanations first (Autopilot's GeneratingExplainabilityReport), then model insights
(GeneratingModelInsightsReport), each for the best candidates first; then, if time is
left, the DataExploration notebook is executed so that its plots are embedded.
Explanations sample fewer validation rows when time is short; a report that does not
fit in the time left is skipped, with the reason recorded. A report that fails is a
partial failure: recorded on the job, it never fails the job nor touches its candidates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabpilot.jobs import status as st
from tabpilot.reports.candidate import SAMPLE_ROWS, write_explanations, write_insights

log = logging.getLogger("tabpilot.jobs.reporting")

REPORT_SHARE = 0.1  # of the time limit, for explanations and insights after training
REPORT_MAX_SECONDS = 60.0
EXPLAIN_SHARE = 0.5  # explanations may use this share of the budget, insights the rest
MIN_ROWS = 100  # fewer validation rows than this make no useful explanation
MIN_PROBE_SECONDS = 0.2  # below this, not even a probe of MIN_ROWS rows is started
FIRST_INSIGHTS_SECONDS = 0.6  # likewise for insights (the first one imports matplotlib)
NOTEBOOK_SECONDS = 5.0  # executing DataExploration.ipynb: a kernel start and some plots
SAFETY = 1.5  # estimates are multiplied by this before they are trusted


def report_seconds(limit: float) -> float:
    """The reports' share of a job's time limit."""
    return min(REPORT_SHARE * limit, REPORT_MAX_SECONDS)


@dataclass
class ReportOutcome:
    failures: list[tuple[str, str]] = field(default_factory=list)  # (secondary status, why)
    summary: dict[str, Any] = field(default_factory=dict)
    stopped: bool = False

    def skip(self, candidate: str | None, report: str, reason: str) -> None:
        self.summary["skipped"].append({"candidate": candidate, "report": report,
                                        "reason": reason})

    def fail(self, status: str, candidate: str, report: str, exc: Exception) -> None:
        message = f"{report} of {candidate} failed: {type(exc).__name__}: {exc}"
        log.warning(message)
        self.failures.append((status, message))
        self.summary["failed"].append({"candidate": candidate, "report": report,
                                       "reason": f"{type(exc).__name__}: {exc}"})


def write_reports(job_dir: Path, candidates: list[str], metric_name: str, deadline: float,
                  set_status: Callable[[str], None], stop_requested: Callable[[], bool],
                  budget_note: str) -> ReportOutcome:
    """Write the reports of `candidates` (best first) by `deadline` (time.time())."""
    started = time.time()
    out = ReportOutcome(summary={"budget_seconds": round(max(0.0, deadline - started), 3),
                                 "explained": [], "insights": [], "skipped": [], "failed": []})
    set_status(st.GENERATING_EXPLAINABILITY)
    # explanations leave the insights of the best candidate at least their time
    explain_end = min(started + EXPLAIN_SHARE * (deadline - started),
                      deadline - FIRST_INSIGHTS_SECONDS * SAFETY)
    _explanations(job_dir, candidates, metric_name, explain_end, stop_requested, out,
                  budget_note)
    if not out.stopped:
        set_status(st.GENERATING_MODEL_INSIGHTS)
        _insights(job_dir, candidates, deadline, stop_requested, out, budget_note)
    if not out.stopped:
        _exploration(job_dir, deadline, out)
    out.summary["seconds"] = round(time.time() - started, 3)
    return out


def _explanations(job_dir: Path, candidates: list[str], metric_name: str, end: float,
                  stop_requested: Callable[[], bool], out: ReportOutcome, note: str) -> None:
    """Each candidate is explained on a probe of MIN_ROWS rows first; its time says how
    many rows (up to SAMPLE_ROWS) the time left allows, and the explanation is redone on
    those. A model's cost varies too much (TreeSHAP on deep trees, text columns) to be
    guessed from another's."""
    for name in candidates:
        if stop_requested():
            out.stopped = True
            return
        if end - time.time() < MIN_PROBE_SECONDS:
            out.skip(name, "Explainability", f"no time left in the report share ({note})")
            continue
        t = time.time()
        rows = MIN_ROWS
        try:
            write_explanations(job_dir, name, metric_name, max_rows=rows, deadline=end)
            per_row = (time.time() - t) / rows  # fixed costs included: an overestimate
            more = min(SAMPLE_ROWS, int((end - time.time()) / (per_row * SAFETY)))
            if more >= 2 * rows:
                try:
                    write_explanations(job_dir, name, metric_name, max_rows=more, deadline=end)
                    rows = more
                except TimeoutError:  # the probe's explanation stays
                    pass
        except TimeoutError as exc:
            out.skip(name, "Explainability", f"{exc} in the report share ({note})")
            continue
        except Exception as exc:
            out.fail(st.EXPLAINABILITY_ERROR, name, "Explainability", exc)
            continue
        out.summary["explained"].append({"candidate": name, "rows": rows,
                                         "seconds": round(time.time() - t, 3)})


def _insights(job_dir: Path, candidates: list[str], end: float,
              stop_requested: Callable[[], bool], out: ReportOutcome, note: str) -> None:
    estimate = FIRST_INSIGHTS_SECONDS
    for name in candidates:
        if stop_requested():
            out.stopped = True
            return
        if end - time.time() < estimate * SAFETY:
            out.skip(name, "ModelInsights", f"no time left in the report share ({note})")
            continue
        t = time.time()
        try:
            write_insights(job_dir, name)
        except Exception as exc:
            out.fail(st.MODEL_INSIGHTS_ERROR, name, "ModelInsights", exc)
            continue
        seconds = time.time() - t
        estimate = max(estimate if out.summary["insights"] else 0.0, seconds)
        out.summary["insights"].append({"candidate": name, "seconds": round(seconds, 3)})


def _exploration(job_dir: Path, end: float, out: ReportOutcome) -> None:
    """Execute DataExploration.ipynb (written unexecuted before training) if time allows."""
    from tabpilot.reports.notebooks import exploration_notebook

    left = end - time.time()
    if not (job_dir / "data_exploration.json").is_file():
        return
    if left < NOTEBOOK_SECONDS:
        out.skip(None, "DataExplorationNotebook",
                 f"not executed: {left:.1f}s left, it needs about {NOTEBOOK_SECONDS:g}s "
                 "(`tabpilot report JOB` executes it)")
        return
    try:
        exploration_notebook(job_dir, job_dir.name, timeout=max(1, int(left)))
        out.summary["exploration_notebook_executed"] = True
    except Exception as exc:  # the unexecuted notebook stays: it still runs
        out.skip(None, "DataExplorationNotebook", f"not executed: {type(exc).__name__}: {exc}")
