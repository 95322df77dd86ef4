"""The job page: status, trials, best score over time, Stop, data insights, the leaderboard
and the accuracy-vs-latency scatter.

    GET  /studio/jobs/{job}            the page; the leaderboard's view is in the URL:
                                       ?sort=latency_ms_p50&order=asc&algorithm=lightgbm&page=2
                                       (the algorithm filter applies to the scatter too)
    GET  /studio/jobs/{job}?part=live  the page's live part alone (same view), fetched by
                                       studio.js when the job's event stream says it changed
    POST /studio/jobs/{job}/stop       the Stop button (CSRF): the CLI's `tabpilot stop`
    GET  /api/v1/jobs/{job}            DescribeAutoMLJobV2's fields (jobs/views.py)
    GET  /api/v1/jobs/{job}/leaderboard    the leaderboard's rows, sorted/filtered/paged
    POST /api/v1/jobs/{job}/stop       the same stop, as JSON
    GET  /api/v1/jobs/{job}/events     Server-Sent Events (ui/live.py)

Everything is read through jobs/views.py (leaderboard, check_alive, fast_choice) and the
store, so the page shows what `tabpilot describe` and `tabpilot candidates` show.

The page is also where a person goes next from: its links lead to the job's data
exploration, to Compare (the top candidates, rows ticked in the leaderboard, or this job's
best beside another job's chosen model) and to the notebooks' "Open in notebook" and "New
notebook" (forms posting to pages_notebooks.py's routes, which start JupyterLab).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tabpilot import names
from tabpilot.errors import NotFoundError, TabpilotError
from tabpilot.jobs import status as st
from tabpilot.jobs.views import check_alive, describe_job, fast_choice
from tabpilot.metrics import METRICS
from tabpilot.serving.guard import relative, route_path
from tabpilot.store import JobRow, Store
from tabpilot.ui import live
from tabpilot.ui.auth import require_csrf
from tabpilot.ui.jobcache import board_and_candidates, derived
from tabpilot.ui.pages_explore import REPORT as EXPLORATION
from tabpilot.ui.render import ctx_of, fragment, render, url_for_page
from tabpilot.ui.rest import ApiFailure, run
from tabpilot.ui.scatter import Point, layout, points_svg

PER_PAGE = (25, 50, 100, 200)
DEFAULT_PER_PAGE = 50
STEPS = (st.STARTING, st.ANALYZING, st.FEATURE_ENGINEERING, st.MODEL_TUNING,
         st.TRAINING_MODELS, st.GENERATING_EXPLAINABILITY, st.GENERATING_MODEL_INSIGHTS)
SEVERITY_ORDER = {"critical": 0, "high": 1, "warning": 2, "medium": 2, "low": 3, "info": 4}
TOP_TO_COMPARE = 3  # "compare the top candidates" preselects this many (two when fewer)
PARTNERS = 30  # other jobs offered for "compare with another job's best", newest first

router = APIRouter()


class View:
    """The leaderboard's view as the URL gives it, cleaned (unknown values -> defaults)."""

    def __init__(self, sort: str | None = None, order: str | None = None,
                 algorithm: str | None = None, page: Any = None, per_page: Any = None) -> None:
        self.sort = sort or "rank"
        self.order = "desc" if order == "desc" else "asc"
        self.algorithm = (algorithm or "").strip()[:64] or None
        self.page = _int(page, 1, 1, 1_000_000)
        self.per_page = _int(per_page, DEFAULT_PER_PAGE, min(PER_PAGE), max(PER_PAGE))

    @classmethod
    def of(cls, request: Request) -> View:
        q = request.query_params
        return cls(q.get("sort"), q.get("order"), q.get("algorithm"), q.get("page"),
                   q.get("per_page"))

    def query(self, **change: Any) -> str:
        """The query string of this view with `change` applied (defaults left out)."""
        values = {"sort": self.sort, "order": self.order, "algorithm": self.algorithm,
                  "page": self.page, "per_page": self.per_page, **change}
        defaults = {"sort": "rank", "order": "asc", "algorithm": None, "page": 1,
                    "per_page": DEFAULT_PER_PAGE}
        kept = {k: v for k, v in values.items() if v is not None and v != defaults.get(k)}
        return "?" + urlencode(kept) if kept else ""


def _int(value: Any, default: int, lo: int, hi: int) -> int:
    try:
        return max(lo, min(hi, int(value)))
    except (TypeError, ValueError):
        return default


def _num(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def best_over_time(created: float, candidates: list, greater_is_better: bool
                   ) -> dict[str, Any]:
    """Each completed trial's score at its end (seconds since the job started) and the best
    so far; `steps` lists the trials that improved it (the chart's table alternative)."""
    done = sorted((c for c in candidates if c.status == st.CANDIDATE_COMPLETED
                   and _num(c.objective) is not None and c.ended is not None),
                  key=lambda c: c.ended)
    xs, scores, best, steps = [], [], [], []
    current: float | None = None
    for c in done:
        value = float(c.objective)
        if current is None or (value > current if greater_is_better else value < current):
            current = value
            steps.append({"seconds": round(c.ended - created, 1), "candidate": c.name,
                          "algorithm": c.algorithm, "score": value})
        xs.append(round(c.ended - created, 2))
        scores.append(value)
        best.append(current)
    return {"x": xs, "score": scores, "best": best, "steps": steps}


def timeline(status: str, secondary: str) -> list[dict[str, str]]:
    """Autopilot's secondary statuses in order, each done, current or to come."""
    at = STEPS.index(secondary) if secondary in STEPS else None
    ended = status not in st.ACTIVE
    out = []
    for i, step in enumerate(STEPS):
        if at is None:
            state = "done" if ended and status == st.COMPLETED else "todo"
        else:
            state = "done" if i < at or (ended and i == at) else \
                "current" if i == at else "todo"
        out.append({"name": step, "state": state})
    if ended or at is None:
        out.append({"name": secondary if at is None else status,
                    "state": "current" if not ended else "done"})
    return out


def board_rows(board: pd.DataFrame, view: View, chosen: str | None, fast: str | None
               ) -> dict[str, Any]:
    """The leaderboard filtered, sorted and cut to one page."""
    algorithms = sorted({str(a) for a in board["algorithm"]}) if len(board) else []
    rows = board
    if view.algorithm:
        rows = rows[rows["algorithm"] == view.algorithm]
    if view.sort not in board.columns:
        view.sort = "rank"
    rows = rows.sort_values(view.sort, ascending=view.order == "asc", na_position="last",
                            kind="stable")
    total = len(rows)
    pages = max(1, math.ceil(total / view.per_page))
    view.page = min(view.page, pages)
    start = (view.page - 1) * view.per_page
    page = rows.iloc[start:start + view.per_page]
    records = []
    for record in page.to_dict("records"):
        record = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                  for k, v in record.items()}
        record["chosen"] = record["candidate"] == chosen
        record["fast"] = record["candidate"] == fast
        records.append(record)
    return {"rows": records, "total": total, "pages": pages, "algorithms": algorithms,
            "first": start + 1 if total else 0, "last": start + len(records)}


def compare_partners(store: Store, job: JobRow) -> list[JobRow]:
    """Other jobs whose chosen model can stand beside this job's best: the same problem
    type (other metrics would not compare) and a chosen candidate, newest first."""
    return [j for j in store.list_jobs() if j.name != job.name and j.best_candidate
            and j.problem_type == job.problem_type][:PARTNERS]


def top_candidates(board: pd.DataFrame, algorithm: str | None = None) -> list[str]:
    """The best few candidates to compare, of one algorithm when the view is filtered to
    it (none when fewer than two have completed)."""
    if algorithm and len(board):
        board = board[board["algorithm"] == algorithm]
    top = [str(c) for c in board["candidate"].head(TOP_TO_COMPARE)] if len(board) else []
    return top if len(top) >= 2 else []


def next_steps(store: Store, job: JobRow, board: pd.DataFrame, view: View
               ) -> dict[str, Any]:
    """Where the page's links lead: the top candidates to compare (of the view's
    algorithm, if any) and their query, the job's best so far (`leader`), other jobs to
    compare it with, whether the data exploration is written yet."""
    top = top_candidates(board, view.algorithm)
    return {"top": top, "top_query": urlencode([("c", f"{job.name}/{c}") for c in top]),
            "leader": str(board["candidate"].iloc[0]) if len(board) else None,
            "partners": compare_partners(store, job),
            "explore": bool(job.job_dir) and (Path(job.job_dir) / EXPLORATION).is_file()}


def job_page(store: Store, name: str, view: View) -> dict[str, Any]:
    """Everything the job page shows, read once."""
    names.check(name, "job")
    job = check_alive(store, store.get_job(name))
    metric = METRICS.get(job.metric or "")
    greater = metric is None or metric.greater_is_better
    board, candidates = board_and_candidates(store, job)
    chosen = job.best_candidate
    fast = fast_choice(board, chosen, greater) if chosen else None
    counts = {s: sum(1 for c in candidates if c.status == s)
              for s in (st.CANDIDATE_COMPLETED, st.CANDIDATE_FAILED, st.CANDIDATE_IN_PROGRESS,
                        st.CANDIDATE_STOPPED)}
    stats = job.stats or {}
    insights = sorted(stats.get("insights", []),
                      key=lambda i: SEVERITY_ORDER.get(str(i.get("severity")), 5))
    metric_columns = [c for c in board.columns
                      if c not in (job.metric, "rank", "candidate", "algorithm", "objective",
                                   "pareto",
                                   "fit_seconds", "latency_ms_p50", "throughput_rows_s",
                                   "model_bytes")]
    return {
        "job": job, "job_request": job.request or {}, "metric": job.metric,
        "greater_is_better": greater, "chosen": chosen, "fast": fast, "counts": counts,
        "active": job.status in st.ACTIVE, "timeline": timeline(job.status, job.secondary_status),
        "insights": insights, "warnings": stats.get("warnings", []),
        "reasons": stats.get("reasons", {}), "selection_note": stats.get("selection_note"),
        "partial_failures": stats.get("partial_failures", []),
        "failed_trials": [c for c in candidates if c.status == st.CANDIDATE_FAILED][:20],
        "history": derived(store, job, "history",
                           lambda: best_over_time(job.created, candidates, greater)),
        "board": board_rows(board, view, chosen, fast), "metric_columns": metric_columns,
        "columns": [("rank", "Rank", True), ("candidate", "Candidate", False),
                    ("algorithm", "Algorithm", False), ("objective", job.metric or "Objective",
                                                        True),
                    *((m, m, True) for m in metric_columns), ("fit_seconds", "Fit s", True),
                    ("latency_ms_p50", "Latency ms (p50)", True),
                    ("model_bytes", "Size bytes", True)],
        "scatter": derived(store, job, "scatter",
                           lambda: layout(_points(board, chosen, fast, name))),
        "view": view, **next_steps(store, job, board, view),
        "elapsed": ((job.ended or time.time()) - job.created),
        "version": live.fingerprint(job, candidates),
    }


def _points(board: pd.DataFrame, chosen: str | None, fast: str | None, job: str
            ) -> list[Point]:
    out = []
    for r in board.itertuples(index=False):
        objective, latency = _num(r.objective), _num(r.latency_ms_p50)
        if objective is None or latency is None:
            continue
        out.append(Point(str(r.candidate), str(r.algorithm), objective, latency, bool(r.pareto),
                         r.candidate == chosen, r.candidate == fast,
                         f"/studio/jobs/{job}/candidates/{r.candidate}"))
    return out


def filtered(points: list[Point], algorithm: str | None) -> list[Point]:
    """The scatter's points under the leaderboard's algorithm filter: the other algorithms'
    points are left out (the axes and the front stay the whole job's, so a point sits at
    the same place in every view)."""
    return points if not algorithm else [p for p in points if p.algorithm == algorithm]


async def _page_data(request: Request, job: str) -> dict[str, Any]:
    store = ctx_of(request).store
    data = await run(job_page, store, job, View.of(request))
    scatter = data["scatter"]
    algorithm = data["view"].algorithm
    shown = [] if scatter["empty"] else filtered(scatter["points"], algorithm)
    data["scatter_shown"] = len(shown)
    if shown:  # the points' markup, for this page's relative links
        here = route_path(request.scope)
        data["scatter_svg"] = await run(
            derived, store, data["job"], ("svg", here, data["metric"], algorithm),
            lambda: points_svg(shown, lambda p: relative(here, p), data["metric"]))
    return data


def _not_found(request: Request, job: str, message: str) -> HTMLResponse:
    return render(request, "job_missing.html", 404, nav="home", name=job, message=message)


@router.get("/studio/jobs/{job}", include_in_schema=False)
async def job_view(request: Request, job: str, part: str | None = None) -> Response:
    """The page, or with `part=live` its live part alone (same path, so the part's
    relative links resolve as the page's do)."""
    try:
        data = await _page_data(request, job)
    except ApiFailure as exc:
        if part == "live":
            raise
        return _not_found(request, job, exc.message)
    if part == "live":
        html = fragment(request, "job_live.html", **data)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})
    return render(request, "job.html", nav="home", **data)


def stop_job(store: Store, name: str) -> str:
    """`tabpilot stop`: mark the job Stopping; its own process ends it as Stopped."""
    row = store.request_stop(names.check(name, "job"))
    return row.status


@router.post("/studio/jobs/{job}/stop", include_in_schema=False,
             dependencies=[Depends(require_csrf)])
async def stop_from_page(request: Request, job: str) -> Response:
    await run(stop_job, ctx_of(request).store, job)
    return RedirectResponse(url_for_page(request, f"/studio/jobs/{job}") + "?stopping=1", 303)


@router.post("/api/v1/jobs/{job}/stop", tags=["jobs"], dependencies=[Depends(require_csrf)])
async def stop_api(request: Request, job: str) -> dict[str, str]:
    """Ask a running job to stop (as `tabpilot stop`); it ends Stopped with its best model."""
    return {"AutoMLJobName": job, "AutoMLJobStatus": await run(stop_job, ctx_of(request).store,
                                                               job)}


@router.get("/api/v1/jobs/{job}", tags=["jobs"])
async def describe_api(request: Request, job: str) -> dict[str, Any]:
    """DescribeAutoMLJobV2's fields plus tabpilot's own (`tabpilot describe --json`)."""
    return await run(lambda: describe_job(ctx_of(request).store, names.check(job, "job")))


@router.get("/api/v1/jobs/{job}/leaderboard", tags=["jobs"])
async def leaderboard_api(request: Request, job: str, sort: str = "rank", order: str = "asc",
                          algorithm: str | None = None, page: int = 1,
                          per_page: int = DEFAULT_PER_PAGE) -> dict[str, Any]:
    """Completed candidates best first, sorted, filtered by algorithm and paged like the
    job page's table; `chosen`/`fast`/`pareto` mark the handed-out model, the
    FastCandidate and the accuracy-latency front."""
    def read() -> dict[str, Any]:
        store = ctx_of(request).store
        row = store.get_job(names.check(job, "job"))
        board, _ = board_and_candidates(store, row)
        metric = METRICS.get(row.metric or "")
        fast = fast_choice(board, row.best_candidate, metric is None or metric.greater_is_better)
        view = View(sort, order, algorithm, page, per_page)
        out = board_rows(board, view, row.best_candidate, fast)
        out.update(sort=view.sort, order=view.order, page=view.page, per_page=view.per_page)
        return out

    return await run(read)


@router.get("/api/v1/jobs/{job}/events", tags=["jobs"])
async def events(request: Request, job: str) -> Response:
    """Server-Sent Events: `update` whenever the job or its candidates change, `end` once
    the job has ended; the stream closes when the client goes, the job ends or after
    live.STREAM_SECONDS (EventSource reconnects by itself)."""
    store = ctx_of(request).store
    try:
        await run(store.get_job, names.check(job, "job"))
    except TabpilotError as exc:
        raise ApiFailure(404 if isinstance(exc, NotFoundError) else 400, str(exc)) from None
    return live.stream(request, store, job)
