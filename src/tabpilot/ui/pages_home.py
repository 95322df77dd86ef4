"""The jobs home: every job of the workspace, newest first, filtered by status and name.

    GET /studio/              the page (filters in the URL: ?status=InProgress&q=churn)
    GET /studio/jobs-rows     the table's body alone: the page polls it every 2 s with htmx
                              while a job shown is active (polling stops when none is)
    GET /api/v1/jobs          the same rows as JSON

A job's best score is its chosen candidate's objective, or while it runs the best
objective among its completed candidates so far.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from tabpilot.jobs import status as st
from tabpilot.jobs.views import check_alive
from tabpilot.metrics import METRICS
from tabpilot.store import JobRow, Store
from tabpilot.ui.jobcache import board_and_candidates
from tabpilot.ui.render import ctx_of, fragment, render
from tabpilot.ui.rest import run

STATUSES = (st.IN_PROGRESS, st.STOPPING, st.COMPLETED, st.FAILED, st.STOPPED)
POLL_SECONDS = 2

router = APIRouter()


def job_summary(store: Store, job: JobRow, now: float | None = None) -> dict[str, Any]:
    """One line of the home's table (and of GET /api/v1/jobs)."""
    job = check_alive(store, job)
    metric = METRICS.get(job.metric or "")
    _, candidates = board_and_candidates(store, job)
    scores = {c.name: c.objective for c in candidates
              if c.status == st.CANDIDATE_COMPLETED and c.objective is not None}
    best = scores.get(job.best_candidate or "")
    if best is None and scores:
        pick = max if metric is None or metric.greater_is_better else min
        best = pick(scores.values())
    end = job.ended if job.ended is not None else (now or time.time())
    return {
        "name": job.name, "status": job.status, "secondary_status": job.secondary_status,
        "problem_type": job.problem_type, "objective": job.metric, "best_score": best,
        "best_candidate": job.best_candidate, "candidates": len(scores),
        "created": job.created, "ended": job.ended,
        "elapsed_seconds": max(0.0, end - job.created),
        "time_limit_seconds": (job.request or {}).get("time_limit"),
        "failure_reason": job.failure_reason, "active": job.status in st.ACTIVE,
    }


def job_summaries(store: Store, status: str | None = None, q: str | None = None
                  ) -> list[dict[str, Any]]:
    """Every job, newest first, keeping those with `status` and `q` in their name."""
    jobs = sorted(store.list_jobs(), key=lambda j: j.created, reverse=True)
    needle = (q or "").strip().lower()
    now = time.time()
    rows = [job_summary(store, j, now) for j in jobs if needle in j.name.lower()]
    return [r for r in rows if not status or r["status"] == status]


def _filters(status: str | None, q: str | None) -> tuple[str | None, str | None]:
    return (status if status in STATUSES else None), (q or "").strip()[:64] or None


@router.get("/studio", include_in_schema=False)
@router.get("/studio/", include_in_schema=False)
async def home(request: Request, status: str | None = None, q: str | None = None
               ) -> HTMLResponse:
    status, q = _filters(status, q)
    store = ctx_of(request).store
    rows = await run(job_summaries, store, status, q)
    total = len(rows) if not (status or q) else await run(lambda: len(store.list_jobs()))
    return render(request, "home.html", nav="home", rows=rows, status=status, q=q,
                  statuses=STATUSES, total=total, poll=POLL_SECONDS)


@router.get("/studio/jobs-rows", include_in_schema=False)
async def home_rows(request: Request, status: str | None = None, q: str | None = None
                    ) -> HTMLResponse:
    status, q = _filters(status, q)
    rows = await run(job_summaries, ctx_of(request).store, status, q)
    html = fragment(request, "home_rows.html", rows=rows, status=status, q=q,
                    poll=POLL_SECONDS)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("/api/v1/jobs", tags=["jobs"])
async def list_jobs(request: Request,
                    status: str | None = Query(None, description="one of " + ", ".join(STATUSES)),
                    q: str | None = Query(None, description="part of the job's name")
                    ) -> dict[str, Any]:
    """Every job of the workspace, newest first (the jobs home's rows)."""
    status, q = _filters(status, q)
    return {"Jobs": await run(job_summaries, ctx_of(request).store, status, q)}
