"""The jobs home and the job page in Chromium: they render offline, pass axe in light and
dark, keep focus visible, sort and page through the URL, grow while a job runs without a
reload, and the Stop button stops it. Screenshots land in docs/screenshots/."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from conftest import start_server, stop_server, tabpilot_cli
from tabpilot.store import Store

sys.path.insert(0, str(Path(__file__).parents[1] / "ui"))
from studiolib import add_job  # noqa: E402  (the store-built jobs of tests/ui)


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory):
    """A server over jobs in every state, written through the store's API."""
    workspace = tmp_path_factory.mktemp("states") / "workspace"
    workspace.mkdir()
    store = Store.for_workspace(workspace)
    now = time.time()
    add_job(store, "many", "Completed", "MaxAutoMLJobRuntimeReached", n=500, failed=3,
            started=now - 900)
    add_job(store, "broken", "Failed", "Failed", n=0, failed=2, started=now - 600,
            failure_reason="the target column 'y' is missing from the table")
    add_job(store, "halted", "Stopped", "Stopped", n=4, started=now - 300)
    server = start_server(workspace)
    yield server
    stop_server(server)


def focus_is_visible(page) -> bool:
    return page.evaluate("""() => {
        const s = getComputedStyle(document.activeElement);
        return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
    }""")


def test_the_home_lists_the_job_passes_axe_and_shows_focus(studio, page, axe, shot) -> None:
    page.goto(studio.url)
    assert page.get_by_role("heading", name="Jobs", exact=True).is_visible()
    link = page.get_by_role("link", name=studio.job, exact=True)
    assert link.is_visible()
    row = page.get_by_role("row").filter(has=link)
    assert "Completed" in row.inner_text()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    assert focus_is_visible(page)
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert focus_is_visible(page)
    axe(page)
    shot(page, "jobs-home")


def test_the_job_page_shows_the_leaderboard_chart_and_scatter(studio, page, axe, shot) -> None:
    page.goto(studio.url)
    page.get_by_role("link", name=studio.job, exact=True).click()
    page.wait_for_url(re.compile(rf"/studio/jobs/{studio.job}$"))
    assert page.get_by_role("heading", name=re.compile(f"Job {studio.job}")).is_visible()
    board = page.get_by_role("table", name=re.compile("Candidates 1–"))
    assert board.get_by_role("row").count() >= 2  # the header and a candidate at least
    assert page.get_by_text("★ chosen").first.is_visible()
    chart = page.get_by_role("img", name=re.compile("Best .* so far"))
    chart.locator("canvas").first.wait_for()  # uPlot drew it from the JSON block
    scatter = page.get_by_role("group", name=re.compile("against single-row latency"))
    assert scatter.get_by_role("link").count() == board.get_by_role("row").count() - 1
    page.get_by_role("link", name=re.compile("Latency ms")).click()
    page.wait_for_url(re.compile(r"sort=latency_ms_p50"))
    assert page.get_by_role("columnheader", name=re.compile("Latency ms.*▲")).is_visible()
    axe(page)
    shot(page, "job")


def test_every_state_renders_and_says_what_happened(states, page, axe, shot) -> None:
    page.goto(states.url + "jobs/many")
    assert page.get_by_text("Candidates 1–50 of 500").is_visible()
    page.get_by_role("link", name="Next page →").click()
    page.wait_for_url(re.compile(r"page=2"))
    assert page.get_by_text("Candidates 51–100 of 500").is_visible()
    page.get_by_label("Algorithm").select_option("linear")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"algorithm=linear"))
    assert page.get_by_text("(linear only)").is_visible()
    axe(page)
    shot(page, "job-500-candidates")
    page.goto(states.url + "jobs/broken")
    assert page.get_by_role("alert").filter(has_text="The job failed").is_visible()
    axe(page)
    shot(page, "job-failed")
    page.goto(states.url + "jobs/halted")
    assert page.get_by_text("The job was stopped").is_visible()
    shot(page, "job-stopped")
    page.goto(states.url + "?status=Failed")
    assert page.get_by_role("link", name="broken").is_visible()
    assert page.get_by_role("link", name="many").count() == 0


def test_an_empty_workspace_says_so(tmp_path: Path, page, axe, shot) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    server = start_server(workspace)
    try:
        page.goto(server.url)
        assert page.get_by_role("heading", name="No jobs yet").is_visible()
        axe(page)
        shot(page, "jobs-home-empty")
    finally:
        stop_server(server)


def test_a_running_job_grows_without_a_reload_and_the_stop_button_stops_it(
        studio, page) -> None:
    name = "growing"
    table = studio.workspace.parent / f"{studio.job}.csv"
    runner = tabpilot_cli("run", str(table), "--target", "target", "--name", name,
                       "--time-limit", "120", "--algorithms", "lightgbm,linear",
                       "--per-trial-time-limit", "15", "--workers", "1",
                       "--workspace", str(studio.workspace), "--quiet",
                       log=studio.workspace.parent / f"{name}.log")
    store = Store.for_workspace(studio.workspace)
    try:
        deadline = time.monotonic() + 60
        while not store.job_exists(name) and time.monotonic() < deadline:
            time.sleep(0.2)
        page.goto(studio.url + f"jobs/{name}")
        page.evaluate("window.__loadedOnce = true")
        done = page.get_by_text(re.compile(r"^\d+$")).first  # the "trials done" figure
        done.wait_for()
        page.wait_for_function("""() => {
            const rows = document.querySelectorAll('#leaderboard tbody tr');
            return rows.length >= 2;
        }""", timeout=60_000)
        assert page.evaluate("window.__loadedOnce === true")  # no reload happened
        page.get_by_role("button", name="Stop job").click()
        page.wait_for_url(re.compile(r"stopping=1"))
        assert page.get_by_text("Stop requested").is_visible()
        assert store.get_job(name).status in ("Stopping", "Stopped")
        runner.wait(timeout=90)
        page.get_by_text("The job was stopped").wait_for(timeout=30_000)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
