"""Compare candidates side by side, `/studio/compare?c=JOB/CANDIDATE&c=...` (or
`?job=A&job=B`: the candidate each job chose): their metrics with intervals (the best in
each row marked in words, not colour alone), latency, size and fit time, and their curves
overlaid (uPlot, drawn by compare.js from a JSON block; the same points as a table).

Curves of different candidates have different points, so each is interpolated onto one
grid (false positive rate or recall for binary problems, the share of rows for the
absolute errors of a regression) before they are overlaid.

    GET /studio/compare            the page (a picker when fewer than two are chosen)
    GET /api/v1/compare?c=...      the same comparison as JSON
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from tabpilot import names
from tabpilot.errors import ConfigError, NotFoundError, TabpilotError
from tabpilot.metrics import METRICS
from tabpilot.ui import candidate_data as data
from tabpilot.ui.render import ctx_of, render
from tabpilot.ui.rest import PREFIX, run

router = APIRouter()
GRID = np.linspace(0.0, 1.0, 51)
MAX_CHOSEN = 8
PICKER_JOBS = 30  # newest jobs offered in the picker
PICKER_CANDIDATES = 40  # best candidates per job offered


def chosen(request: Request) -> list[tuple[str, str]]:
    """(job, candidate) pairs from ?c=JOB/CANDIDATE and ?job=JOB (its chosen candidate)."""
    store = ctx_of(request).store
    out: list[tuple[str, str]] = []
    for value in request.query_params.getlist("c"):
        job, sep, candidate = value.strip().partition("/")
        if not sep:
            raise ConfigError(f"compare takes c=JOB/CANDIDATE, got {value[:80]!r}")
        out.append((names.check(job, "job"), names.check(candidate, "candidate")))
    for job in request.query_params.getlist("job"):
        if not job.strip():
            continue
        row = store.get_job(names.check(job.strip(), "job"))
        if not row.best_candidate:
            raise NotFoundError(f"job {row.name!r} has no chosen candidate yet (status "
                                f"{row.status}); pick its candidates one by one")
        out.append((row.name, row.best_candidate))
    unique = list(dict.fromkeys(out))
    if len(unique) > MAX_CHOSEN:
        raise ConfigError(f"compare at most {MAX_CHOSEN} candidates at once, got {len(unique)}")
    return unique


def _entry(store: Any, job: str, candidate: str) -> dict[str, Any]:
    job_row, cand = store.get_job(job), store.get_candidate(job, candidate)
    entry: dict[str, Any] = {"job": job_row, "candidate": cand, "label": f"{job}/{candidate}",
                             "insights": None, "problem": None}
    if not cand.artifact_dir:
        entry["problem"] = f"{job}/{candidate} has no packaged model (status {cand.status})"
        return entry
    try:
        entry["insights"] = data.insights(job_row, cand)
    except NotFoundError as exc:
        entry["problem"] = str(exc)
    return entry


def _metric_rows(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per metric: each candidate's value and interval, the best one(s) named."""
    objective = entries[0]["job"].metric
    seen: list[str] = [objective] if objective else []
    for e in entries:
        for name in (e["insights"] or {}).get("metrics", {}):
            if name not in seen:
                seen.append(name)
    rows = []
    for name in seen:
        cells = [(e["insights"] or {}).get("metrics", {}).get(name) for e in entries]
        values = [c["value"] if c and np.isfinite(c["value"]) else None for c in cells]
        known = [v for v in values if v is not None]
        best = None
        if len(known) > 1 and name in METRICS:
            best = max(known) if METRICS[name].greater_is_better else min(known)
        rows.append({"name": name, "objective": name == objective, "cells": [
            {"value": v, "lower": c["lower"] if c else None, "upper": c["upper"] if c else None,
             "best": best is not None and v == best} for v, c in zip(values, cells, strict=True)]})
    return [r for r in rows if any(c["value"] is not None for c in r["cells"])]


def _curves(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Overlaid curves on a common grid: {id, title, x label, y label, x, series}."""
    usable = [e for e in entries if e["insights"]]
    if not usable:
        return []
    kinds = {("binary" in e["insights"], "regression" in e["insights"]) for e in usable}
    if len(kinds) > 1:
        return []
    first = usable[0]["insights"]
    x = [round(float(v), 4) for v in GRID]
    if "binary" in first:
        roc = [{"label": e["label"], "y": _interp(e["insights"]["binary"]["roc_curve"]["fpr"],
                                                  e["insights"]["binary"]["roc_curve"]["tpr"])}
               for e in usable]
        pr = [{"label": e["label"], "y": _interp(
            e["insights"]["binary"]["precision_recall_curve"]["recall"],
            e["insights"]["binary"]["precision_recall_curve"]["precision"])} for e in usable]
        return [{"id": "roc", "title": "ROC curves", "xlabel": "false positive rate",
                 "ylabel": "true positive rate", "x": x, "series": roc, "unit": True},
                {"id": "pr", "title": "Precision-recall curves", "xlabel": "recall",
                 "ylabel": "precision", "x": x, "series": pr, "unit": True}]
    if "regression" in first:
        series = []
        for e in usable:
            avp = e["insights"]["regression"]["actual_vs_predicted"]
            errors = np.sort(np.abs(np.asarray(avp["actual"]) - np.asarray(avp["predicted"])))
            values = np.quantile(errors, GRID) if len(errors) else np.full(len(GRID), np.nan)
            series.append({"label": e["label"], "y": [round(float(v), 6) for v in values]})
        return [{"id": "abs-error", "title": "Absolute error by share of rows",
                 "xlabel": "share of validation rows (errors sorted)",
                 "ylabel": "absolute error", "x": x, "series": series, "unit": False}]
    return []


def _interp(xs: list[float], ys: list[float]) -> list[float]:
    order = np.argsort(np.asarray(xs, dtype=float), kind="stable")
    xv, yv = np.asarray(xs, dtype=float)[order], np.asarray(ys, dtype=float)[order]
    return [round(float(v), 4) for v in np.interp(GRID, xv, yv)]


def comparison(request: Request) -> dict[str, Any]:
    store = ctx_of(request).store
    pairs = chosen(request)
    entries = [_entry(store, job, cand) for job, cand in pairs]
    problems = {e["job"].problem_type for e in entries}
    notes = [e["problem"] for e in entries if e["problem"]]
    if len(problems) > 1:
        notes.append("These candidates solve different problem types; their metrics do not "
                     "compare.")
    if len({e["job"].name for e in entries}) > 1:
        notes.append("Candidates of different jobs were validated on different rows: compare "
                     "their intervals, not only their values.")
    return {"entries": entries, "metric_rows": _metric_rows(entries) if entries else [],
            "curves": _curves(entries), "notes": notes, "pairs": pairs}


def picker(request: Request) -> list[dict[str, Any]]:
    """Recent jobs and their best candidates, for the picker."""
    store = ctx_of(request).store
    jobs = sorted(store.list_jobs(), key=lambda j: j.created, reverse=True)[:PICKER_JOBS]
    out = []
    for job in jobs:
        cands = [c for c in store.list_candidates(job.name) if c.artifact_dir]
        if not cands:
            continue
        greater = METRICS[job.metric].greater_is_better if job.metric in METRICS else True
        cands.sort(key=lambda c: (c.objective is None,
                                  -(c.objective or 0) if greater else (c.objective or 0)))
        out.append({"job": job, "candidates": cands[:PICKER_CANDIDATES]})
    return out


@router.get("/studio/compare", include_in_schema=False)
async def compare_page(request: Request) -> Response:
    error, found = None, None
    try:
        found = await run_in_threadpool(comparison, request)
    except TabpilotError as exc:
        error = str(exc)
    choices = await run_in_threadpool(picker, request)
    return render(request, "compare.html", 400 if error else 200, nav="compare",
                  error=error, choices=choices, **(found or {"entries": [], "metric_rows": [],
                                                           "curves": [], "notes": [],
                                                           "pairs": []}))


@router.get(PREFIX + "/compare", tags=["candidates"])
async def compare_json(request: Request) -> dict[str, Any]:
    """The comparison of ?c=JOB/CANDIDATE (repeated) or ?job=JOB (its chosen candidate):
    each candidate's facts and metrics, and the overlaid curves."""
    found = await run(comparison, request)
    return {
        "candidates": [{"job": e["job"].name, "candidate": e["candidate"].name,
                        "algorithm": e["candidate"].algorithm,
                        "objective": e["candidate"].objective,
                        "latency_ms_p50": e["candidate"].latency_ms_p50,
                        "model_bytes": e["candidate"].model_bytes,
                        "fit_seconds": e["candidate"].fit_seconds,
                        "metrics": (e["insights"] or {}).get("metrics", {})}
                       for e in found["entries"]],
        "curves": found["curves"], "notes": found["notes"]}
