"""A job's data exploration, `/studio/jobs/{job}/explore`: what DataExploration.ipynb shows,
rendered as a page (not the notebook's JSON): the insights first, most severe first, each
with its fix and the evidence behind it; possible target leaks; the target; each column's
prediction power; the target per category or bin of the most predictive columns (charts
from reports/charts.py, as images from their own route, each with its table); the
correlations; the anomalous rows; per-column statistics.

It reads the job's `data_exploration.json`, the file the notebook itself reads.

    GET /studio/jobs/{job}/explore                     the page
    GET /studio/jobs/{job}/explore/by-column/{i}.png   the target by the i-th column
    GET /api/v1/jobs/{job}/exploration                 data_exploration.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from tabpilot import names
from tabpilot.errors import NotFoundError, TabpilotError
from tabpilot.ui.candidate_data import file_png
from tabpilot.ui.render import ctx_of, render
from tabpilot.ui.rest import PREFIX, run

router = APIRouter()
REPORT = "data_exploration.json"
SEVERITY = {"high": 0, "medium": 1, "low": 2}


def report(request: Request, job: str) -> tuple[Any, dict[str, Any]]:
    """The job's row and its data_exploration.json."""
    row = ctx_of(request).store.get_job(names.check(job, "job"))
    path = Path(row.job_dir) / REPORT
    if not path.is_file():
        raise NotFoundError(f"job {job!r} has no data exploration yet (status {row.status}, "
                            f"{row.secondary_status}); it is written once the data is read"
                            + (f". The job failed: {row.failure_reason}"
                               if row.failure_reason else ""))
    return row, json.loads(path.read_text())


def view(found: dict[str, Any]) -> dict[str, Any]:
    """The report arranged for the page: insights sorted, leaks apart with their evidence
    as (name, value) pairs, statistics split by kind."""
    insights = sorted(found.get("insights", []), key=lambda i: SEVERITY.get(i["severity"], 3))
    leaks = []
    for item in insights:
        if item["kind"] != "target_leakage":
            continue
        evidence = dict(item.get("evidence") or {})
        evidence.pop("plot", None)
        numbers = {**{k: v for k, v in evidence.items() if k != "metrics"},
                   **(evidence.get("metrics") or {})}
        leaks.append({**item, "numbers": list(numbers.items())})
    stats = found.get("column_stats", [])
    numeric = [s for s in stats if s.get("kind") == "numeric"]
    others = []
    analysed = found.get("sampled_rows", found.get("rows", 0))
    for s in stats:
        if s.get("kind") == "numeric":
            continue
        count = round(analysed * (1 - s.get("missing_fraction", 0)))
        top = s.get("top_values") if isinstance(s.get("top_values"), dict) else {}
        value, n = next(iter(top.items()), (None, 0))
        others.append({**s, "count": count, "top_value": value,
                       "top_share": n / count if count else None})
    power = sorted(found.get("prediction_power", {}).items(), key=lambda kv: -kv[1])
    by_column = found.get("target_by_column") or {"columns": []}
    kinds: dict[str, int] = {}
    for kind in found.get("kinds", {}).values():
        kinds[kind] = kinds.get(kind, 0) + 1
    target = found.get("target", {})
    return {"report": found, "insights": insights, "leaks": leaks, "numeric": numeric,
            "others": others, "power": power, "by_column": by_column["columns"],
            "kind_counts": sorted(kinds.items(), key=lambda kv: -kv[1]),
            "class_counts": list(target.get("class_counts", {}).items()),
            "target_numbers": [(k, v) for k, v in target.items() if k != "class_counts"],
            "correlation": found.get("correlation") or {"columns": [], "matrix": []}}


@router.get("/studio/jobs/{job}/explore", include_in_schema=False)
async def explore_page(request: Request, job: str) -> Response:
    try:
        row, found = await run_in_threadpool(report, request, job)
    except TabpilotError as exc:
        return render(request, "explore.html", 404, nav="home", job_name=job,
                      missing=str(exc))
    return render(request, "explore.html", nav="home", job_name=job, missing=None, job=row,
                  **view(found))


@router.get("/studio/jobs/{job}/explore/by-column/{index}.png", include_in_schema=False)
async def by_column_png(request: Request, job: str, index: int) -> Response:
    def make() -> bytes:
        from tabpilot.reports import charts

        row, found = report(request, job)
        by_column = found.get("target_by_column") or {"columns": []}
        items = by_column["columns"]
        if not 0 <= index < len(items):
            raise NotFoundError(f"job {job!r} has no target-by-column chart {index}")
        item = items[index]
        return file_png(Path(row.job_dir) / REPORT, f"by-column-{index}",
                        lambda: charts.target_by_group(item["column"], item["groups"],
                                                       by_column["overall"],
                                                       found["problem_type"]))

    return Response(await run(make), media_type="image/png",
                    headers={"Cache-Control": "private, max-age=300"})


@router.get(PREFIX + "/jobs/{job}/exploration", tags=["jobs"])
async def exploration_json(request: Request, job: str) -> dict[str, Any]:
    """The job's data analysis (data_exploration.json): insights, target, prediction
    power, target by column, correlations, anomalous rows, column statistics."""
    _, found = await run(report, request, job)
    return found
