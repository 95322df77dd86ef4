"""The jobs home and the job page in each state a workspace holds: empty, a running job,
a failed one, a stopped one, one with a single candidate and one with 500 (pagination),
and the live stream that feeds an open page."""

from __future__ import annotations

import asyncio
import html
import re
import time
from pathlib import Path

import pytest
from studiolib import add_job, client, studio_app

from tabpilot.jobs.views import leaderboard
from tabpilot.store import Store
from tabpilot.ui import live
from tabpilot.ui.pages_home import job_summaries
from tabpilot.ui.pages_job import View, best_over_time, job_page, timeline

INSIGHTS = [{"severity": "low", "kind": "duplicate_rows", "message": "3 rows repeat",
             "fix": "drop them", "columns": []},
            {"severity": "high", "kind": "target_leak", "message": "leak_col predicts y",
             "fix": "drop leak_col", "columns": ["leak_col"]}]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("jobs-pages")
    store = Store.for_workspace(root)
    now = time.time()
    add_job(store, "many", "Completed", "MaxAutoMLJobRuntimeReached", n=500, failed=7,
            started=now - 600)
    add_job(store, "single", "Completed", "Completed", n=1, started=now - 500,
            metric="MSE", problem_type="regression")
    add_job(store, "broken", "Failed", "Failed", n=0, failed=2, started=now - 400,
            failure_reason="the target column 'y' is missing from the table")
    add_job(store, "halted", "Stopped", "Stopped", n=4, started=now - 300)
    add_job(store, "running", "InProgress", "ModelTuning", n=3, started=now - 20,
            stats={"insights": INSIGHTS})
    return root


@pytest.fixture(scope="module")
def http(workspace: Path):
    return client(studio_app(workspace))


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_an_empty_workspace_says_so(tmp_path: Path) -> None:
    html = client(studio_app(tmp_path)).get("/studio/").text
    assert "No jobs yet" in html and 'href="new"' in html
    assert "tabpilot run" in html


def test_home_lists_every_job_newest_first(http) -> None:
    html = http.get("/studio/").text
    order = re.findall(r'<th scope="row"><a href="jobs/([^"]+)">', html)
    assert order == ["running", "halted", "broken", "single", "many"]
    text = _text(html)
    assert "InProgress ModelTuning binary F1" in text
    assert "Failed Failed the target column 'y' is missing" in text
    assert "/ 1 min 00 s" in text  # elapsed / limit


def test_home_rows_carry_the_best_score_and_counts(workspace: Path) -> None:
    rows = {r["name"]: r for r in job_summaries(Store.for_workspace(workspace))}
    store = Store.for_workspace(workspace)
    board = leaderboard(store, "many")
    assert rows["many"]["best_score"] == pytest.approx(board["objective"].iloc[0])
    assert rows["many"]["candidates"] == 500
    assert rows["single"]["best_score"] is not None and rows["broken"]["best_score"] is None
    assert rows["running"]["active"] and not rows["halted"]["active"]


@pytest.mark.parametrize(("query", "expected"), [
    ("?status=Failed", ["broken"]), ("?q=RUN", ["running"]), ("?status=Completed&q=s", ["single"]),
    ("?status=Bogus", ["running", "halted", "broken", "single", "many"])])
def test_home_filters_live_in_the_url(http, query: str, expected: list[str]) -> None:
    html = http.get("/studio/" + query).text
    assert re.findall(r'<th scope="row"><a href="jobs/([^"]+)">', html) == expected


def test_a_filter_matching_nothing_says_so(http) -> None:
    assert "No job matches these filters (5 jobs" in _text(http.get("/studio/?q=zzz").text)


def test_the_home_polls_only_while_a_job_runs(http) -> None:
    assert 'hx-trigger="every 2s"' in http.get("/studio/").text
    assert "hx-trigger" not in http.get("/studio/?status=Completed").text
    rows = http.get("/studio/jobs-rows?status=InProgress").text
    assert rows.startswith("<tbody") and "running" in rows and "halted" not in rows
    api = http.get("/api/v1/jobs?status=Stopped").json()["Jobs"]
    assert [j["name"] for j in api] == ["halted"]


def test_500_candidates_are_paginated_and_the_view_is_in_the_url(http) -> None:
    html = http.get("/studio/jobs/many").text
    assert "Candidates 1–50 of 500" in html and "Page 1 of 10" in html
    assert html.count('<th scope="row"><a href="many/candidates/') == 50
    assert 'href="many?page=2" rel="next"' in html
    page = http.get("/studio/jobs/many?page=10&per_page=25&sort=latency_ms_p50&order=desc").text
    assert "Candidates 226–250 of 500" in page  # page 10 of 20 at 25 rows
    latencies = [float(x) for x in re.findall(
        r'<td class="num">([\d.]+)</td>\s*<td class="num">\d+</td>\s*<td>', page)]
    assert latencies == sorted(latencies, reverse=True) and len(latencies) == 25
    assert 'href="many?sort=latency_ms_p50&amp;per_page=25&amp;page=9"' in page \
        or 'href="many?sort=latency_ms_p50&amp;order=desc&amp;page=9&amp;per_page=25"' in page


def test_the_leaderboard_filters_by_algorithm(http) -> None:
    page = http.get("/studio/jobs/many?algorithm=linear").text
    algorithms = set(re.findall(r"</th>\s*<td>([a-z_]+)</td>", page))
    assert algorithms == {"linear"} and "of 125 (linear only)" in page
    none = http.get("/studio/jobs/many?algorithm=catboost").text
    assert "No completed candidate uses catboost" in none


def test_the_leaderboard_api_pages_like_the_table(http) -> None:
    body = http.get("/api/v1/jobs/many/leaderboard?page=3&per_page=100&sort=objective"
                    "&order=asc").json()
    assert body["total"] == 500 and body["pages"] == 5 and len(body["rows"]) == 100
    scores = [r["objective"] for r in body["rows"]]
    assert scores == sorted(scores)
    assert http.get("/api/v1/jobs/nope/leaderboard").status_code == 404


def test_the_scatter_marks_the_front_and_links_every_point(http, workspace: Path) -> None:
    html = http.get("/studio/jobs/many").text
    svg = html[html.index("<svg"):html.index("</svg>")]
    board = leaderboard(Store.for_workspace(workspace), "many")
    assert svg.count("<a href=") == 500
    assert svg.count('class="point front"') == int(board["pareto"].sum()) > 0
    assert svg.count('class="point chosen"') == 1 and "★ chosen" in svg
    assert 'role="group" aria-labelledby="scatter-cap"' in svg
    chosen = Store.for_workspace(workspace).get_job("many").best_candidate
    assert f'href="many/candidates/{chosen}"><title>{chosen}' in svg


def test_the_running_job_shows_insights_first_status_and_stop(http) -> None:
    html = http.get("/studio/jobs/running").text
    text = _text(html)
    assert text.index("Data insights") < text.index("Status") < text.index("Leaderboard")
    assert text.index("target leak") < text.index("duplicate rows")  # high before low
    assert "3 trials done" in text and 'aria-current="step">ModelTuning' in html
    assert "Stop job" in html and 'name="csrf_token"' in html
    assert 'data-active="1"' in html and "history-data" in html


def test_a_failed_job_says_why(http) -> None:
    text = _text(http.get("/studio/jobs/broken").text)
    assert "The job failed. the target column 'y' is missing" in text
    assert "2 trials failed" in text and "No candidate has completed yet: the job ended" in text
    assert "Stop job" not in text


def test_a_stopped_job_says_what_was_kept(http) -> None:
    text = _text(http.get("/studio/jobs/halted").text)
    assert "The job was stopped" in text and "Its best model so far" in text
    assert "tabpilot resume halted" in text


def test_a_single_candidate_job_renders(http) -> None:
    html = http.get("/studio/jobs/single").text
    assert "Candidates 1–1 of 1" in html and "Page 1 of" not in html
    assert "(lower is better)" in html  # MSE


def test_an_unknown_job_is_a_404_page(http) -> None:
    response = http.get("/studio/jobs/nope")
    assert response.status_code == 404 and "tabpilot" in response.text
    assert http.get("/studio/jobs/bad..name").status_code == 404
    assert http.get("/api/v1/jobs/nope").status_code == 404


def test_the_live_fragment_keeps_the_view(http) -> None:
    part = http.get("/studio/jobs/many?page=2&part=live").text
    assert not part.startswith("<!doctype") and "Candidates 51–100 of 500" in part


def test_best_over_time_and_timeline_are_plain_data(workspace: Path) -> None:
    store = Store.for_workspace(workspace)
    job = store.get_job("many")
    history = best_over_time(job.created, store.list_candidates("many"), True)
    assert history["best"] == sorted(history["best"])  # never gets worse
    assert len(history["x"]) == 500 and history["steps"][-1]["score"] == max(history["score"])
    steps = timeline("Completed", "MaxAutoMLJobRuntimeReached")
    assert steps[-1] == {"name": "MaxAutoMLJobRuntimeReached", "state": "done"}
    assert [s["state"] for s in timeline("InProgress", "AnalyzingData")][:3] == \
        ["done", "current", "todo"]
    data = job_page(store, "many", View(page=99))
    assert data["board"]["rows"] and data["view"].page == 10  # clamped to the last page


def test_the_stream_sends_changes_then_ends_with_the_job(tmp_path: Path) -> None:
    store = Store.for_workspace(tmp_path)
    add_job(store, "live", n=1)

    async def read() -> tuple[str, bool]:
        return live.read_state(store, "live")

    async def never_gone() -> bool:
        return False

    async def collect() -> list[str]:
        out = []
        async for message in live.changes(read, never_gone, tick=0.01, lifetime=5):
            out.append(message)
            if len(out) == 2:  # the first state: a trial ends, then the job
                store.add_candidate(job="live", name="linear-900", number=900,
                                    algorithm="linear", family="linear", params={},
                                    status="Completed")
                store.update_candidate("live", "linear-900", objective=0.99, ended=time.time())
            if len(out) == 3:
                store.update_job("live", status="Completed", secondary_status="Completed",
                                 ended=time.time())
        return out

    messages = asyncio.run(collect())
    assert messages[0].startswith("retry:")
    updates = [m for m in messages if m.startswith("event: update")]
    assert len(updates) == 3 and len(set(updates)) == 3
    assert messages[-1] == "event: end\ndata: ended\n\n"


def test_the_stream_stops_when_the_client_goes_or_its_time_is_up(tmp_path: Path) -> None:
    store = Store.for_workspace(tmp_path)
    add_job(store, "live", n=1)
    calls = {"n": 0}

    async def read() -> tuple[str, bool]:
        return live.read_state(store, "live")

    async def gone_on_third() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    async def drain(gone, lifetime: float) -> list[str]:
        return [m async for m in live.changes(read, gone, tick=0.01, lifetime=lifetime)]

    assert len(asyncio.run(drain(gone_on_third, 60))) == 2  # retry + first state
    ticks = iter([0.0, 0.0, 0.5, 1.0, 2.0])

    async def stays() -> bool:
        return False

    out = asyncio.run(_drain_clocked(read, stays, ticks))
    assert out[-1].startswith("event: update") and len(out) == 2


async def _drain_clocked(read, gone, ticks) -> list[str]:
    return [m async for m in live.changes(read, gone, tick=0.0, lifetime=1.0,
                                          clock=lambda: next(ticks))]


def test_the_event_route_of_an_ended_job_answers_and_closes(http) -> None:
    with http.stream("GET", "/api/v1/jobs/halted/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
    assert "event: update" in body and body.endswith("event: end\ndata: ended\n\n")
    assert http.get("/api/v1/jobs/nope/events").status_code == 404


def test_an_ended_jobs_rows_are_kept_only_while_its_row_is_unchanged(tmp_path: Path) -> None:
    store = Store.for_workspace(tmp_path)
    add_job(store, "done", "Completed", "Completed", n=2)
    assert job_page(store, "done", View())["board"]["total"] == 2
    store.add_candidate(job="done", name="linear-500", number=500, algorithm="linear",
                        family="linear", params={}, status="Completed")
    store.update_candidate("done", "linear-500", objective=0.5, latency_ms_p50=1.0)
    assert job_page(store, "done", View())["board"]["total"] == 2  # kept: the row is the same
    store.update_job("done", secondary_status="Completed")  # e.g. `tabpilot resume`, `report`
    data = job_page(store, "done", View())
    assert data["board"]["total"] == 3 and len(data["scatter"]["points"]) == 3
