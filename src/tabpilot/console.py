"""What a running job says to a person, in words: shared by the CLI (its live view, and
plain lines when its output is not a terminal) and the Python API (`verbosity`).

    log = ProgressLog(print, CLI_FLAGS)     # an `on_progress` callback
    AutoML("y", on_progress=log).fit(df)

Plain output is one line per phase, one every `every` trials, what the job inferred
(with the flag that overrides each choice) and any target leak once the data is analysed,
and a final line with the status, the trials and the best score.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from tabpilot.jobs import status as st
from tabpilot.jobs.progress import Progress

# how each face spells the override of an inferred setting
CLI_FLAGS = {"problem_type": "--problem-type", "metric": "--metric",
             "feature_types": "--feature-types FILE",
             "validation": "--folds N or --validation-fraction F"}
PYTHON_FLAGS = {"problem_type": "problem_type=", "metric": "metric=",
                "feature_types": "feature_types=FILE",
                "validation": "folds= or validation_fraction="}

PHASE_WORDS = {
    st.STARTING: "starting",
    st.ANALYZING: "analysing the data",
    st.FEATURE_ENGINEERING: "preparing features and the validation split",
    st.MODEL_TUNING: "training and tuning candidates",
    "Stacking": "stacking: a level-2 model on the candidates' predictions",
    "Ensembling": "ensembling the best candidates",
    "Distilling": "distilling the ensemble into one fast model",
    "Refitting": "refitting the chosen candidate on all rows",
    st.GENERATING_EXPLAINABILITY: "writing explanations",
    st.GENERATING_MODEL_INSIGHTS: "writing model insights",
}
KINDS_SHOWN = 6  # column names listed per kind; the rest are counted


def inferred_lines(analysis: Mapping[str, Any], flags: Mapping[str, str] = CLI_FLAGS
                   ) -> list[str]:
    """What the job inferred from the data, why, and how to override each choice."""
    reasons = analysis.get("reasons") or {}
    lines = []
    ptype, why = analysis.get("problem_type"), reasons.get("problem_type", "")
    classes = analysis.get("classes")
    shown = f", classes {_listed([str(c) for c in classes], 8)}" if classes else ""
    if why == "given":
        lines.append(f"problem type: {ptype} (given){shown}")
    else:
        lines.append(f"problem type: {ptype} (inferred: {why}){shown}; "
                     f"override with {flags['problem_type']}")
    metric_why = reasons.get("metric", "")
    lines.append(f"metric: {analysis.get('metric')} ({metric_why})"
                 + ("" if metric_why == "given" else f"; override with {flags['metric']}"))
    by_kind: dict[str, list[str]] = {}
    for column, kind in (analysis.get("schema") or {}).items():
        by_kind.setdefault(kind, []).append(column)
    kinds = "; ".join(f"{len(cols)} {kind} ({_listed(cols, KINDS_SHOWN)})"
                      for kind, cols in by_kind.items())
    types_why = reasons.get("feature_types", "inferred")
    lines.append(f"columns ({types_why}): {kinds}"
                 + (f"; override with {flags['feature_types']}" if types_why == "inferred"
                    else ""))
    return lines


def leak_lines(insights: list[dict[str, Any]]) -> list[str]:
    """One warning per high or medium target leak."""
    return [f"warning ({i['severity']}): {i['message']}" + (f"; {i['fix']}" if i.get("fix")
                                                             else "")
            for i in insights
            if i.get("kind") == "target_leakage" and i.get("severity") in ("high", "medium")]


def analysis_lines(analysis: Mapping[str, Any], flags: Mapping[str, str] = CLI_FLAGS
                   ) -> list[str]:
    """What a job says once its data is analysed: what it inferred, the sample it read of
    a dataset larger than its memory (data/sampling.py), then its leak warnings."""
    sample = [f"sample: {analysis['sample']}"] if analysis.get("sample") else []
    return inferred_lines(analysis, flags) + sample + leak_lines(analysis.get("insights") or [])


def validation_line(validation: Mapping[str, Any], flags: Mapping[str, str] = CLI_FLAGS
                    ) -> str:
    """How the candidates are validated, why, and how to choose otherwise."""
    return f"validation: {validation['split']}" + (
        "" if validation.get("given") else f"; override with {flags['validation']}")


class Said:
    """The lines a job says once, each when its facts arrive: what was inferred once the
    data is analysed, then the validation split once it is made."""

    def __init__(self, flags: Mapping[str, str] = CLI_FLAGS) -> None:
        self.flags = flags
        self.analysed = self.validated = False

    def new_lines(self, p: Progress) -> list[str]:
        lines = []
        if p.analysis is not None and not self.analysed:
            self.analysed = True
            lines += analysis_lines(p.analysis, self.flags)
        if p.validation is not None and not self.validated:
            self.validated = True
            lines.append(validation_line(p.validation, self.flags))
        return lines


def final_line(p: Progress) -> str:
    best = "no best candidate" if p.best_candidate is None else (
        f"best {p.metric} {_score(p.best_value)} ({p.best_candidate})" if p.metric
        else f"best {p.best_candidate}")
    line = (f"job {p.job}: {p.status} ({p.secondary_status}) in {p.elapsed:.1f}s; "
            f"{_trials(p)}; {best}")
    return line + (f"; reason: {p.failure_reason}" if p.failure_reason else "")


class ProgressLog:
    """An `on_progress` callback that writes plain lines (a file, a pipe, a notebook)."""

    def __init__(self, write: Callable[[str], None], flags: Mapping[str, str] = CLI_FLAGS,
                 every: int = 10, verbosity: int = 1) -> None:
        self.write, self.flags, self.verbosity = write, flags, verbosity
        self.every = 1 if verbosity >= 2 else every  # verbosity 2: a line per trial
        self.phase: str | None = None
        self.said = Said(flags)
        self.next_count = self.every
        self.ended = False

    def __call__(self, p: Progress) -> None:
        if self.ended or self.verbosity <= 0:
            return
        if p.analysis is not None and not self.said.analysed:
            rows = p.analysis.get("rows")
            self.write(f"job {p.job}: {rows:,} rows, mode {p.analysis.get('mode')}, "
                       f"time limit {p.time_limit:g}s")
        for line in self.said.new_lines(p):
            self.write(line)
        if p.status not in st.ACTIVE:
            self.ended = True
            self.write(final_line(p))
            return
        if p.phase and p.phase != self.phase:
            self.phase = p.phase
            self.write(f"[{p.elapsed:6.1f}s] {p.phase}: {PHASE_WORDS.get(p.phase, p.phase)}")
        count = p.done + p.failed
        if count >= self.next_count:
            self.next_count = (count // self.every + 1) * self.every
            best = "" if p.best_candidate is None else \
                f", best {p.metric} {_score(p.best_value)} ({p.best_candidate})"
            self.write(f"[{p.elapsed:6.1f}s] {_trials(p)}{best}, {p.remaining:.0f}s left")


def _trials(p: Progress) -> str:
    return f"{p.done} trials done, {p.failed} failed" + (
        f", {p.running} running" if p.running else "")


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.5g}"


def _listed(names: list[str], n: int) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


@contextmanager
def leaks_logged_elsewhere() -> Iterator[None]:
    """While a face shows the job's leak warnings itself, the job's log leaves them out
    (it logs high ones for servers and workers, where nobody watches a progress view)."""
    jobs_log = logging.getLogger("tabpilot.jobs")
    jobs_log.addFilter(_not_a_leak)
    try:
        yield
    finally:
        jobs_log.removeFilter(_not_a_leak)


def _not_a_leak(record: logging.LogRecord) -> bool:
    return not hasattr(record, "target_leak")
