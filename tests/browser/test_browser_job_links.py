"""The job page in Chromium as a hub: its links lead to the data exploration and to
Compare (the top candidates, the ticked rows, this job's best beside another job's), its
notebook buttons are there; its scatter follows the leaderboard's algorithm filter, also
while new points arrive over Server-Sent Events; the states not covered elsewhere (a job
with one candidate, a stopped job, a job that is not there) render, say what happened
and pass axe in light and dark. Jobs are written through the store's API
(tests/ui/studiolib.py); a thread beats for the running one as its process would."""

from __future__ import annotations

import re
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import start_server, stop_server
from tabpilot.jobs.views import leaderboard
from tabpilot.store import Store

sys.path.insert(0, str(Path(__file__).parents[1] / "ui"))
from studiolib import add_job  # noqa: E402  (the store-built jobs of tests/ui)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory):
    workspace = tmp_path_factory.mktemp("hub") / "workspace"
    workspace.mkdir()
    store = Store.for_workspace(workspace)
    now = time.time()
    add_job(store, "many", "Completed", "Completed", n=200, started=now - 900)
    add_job(store, "other", "Completed", "Completed", n=3, started=now - 800)
    add_job(store, "single", "Completed", "Completed", n=1, started=now - 700)
    add_job(store, "halted", "Stopped", "Stopped", n=4, started=now - 600)
    add_job(store, "running", n=8, best=False, started=now - 30)
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            store.beat("running")
            stop.wait(0.5)

    threading.Thread(target=beat, daemon=True).start()
    server = start_server(workspace)
    server.store = store
    yield server
    stop.set()
    stop_server(server)


def scatter(page):
    return page.get_by_role("group", name=re.compile("against single-row latency"))


def test_one_candidate_and_a_stopped_job_say_what_happened(hub, page, axe, shot) -> None:
    page.goto(hub.url + "jobs/single")
    assert page.get_by_text("Candidates 1–1 of 1").is_visible()
    assert page.get_by_role("status").filter(has_text="Completed").first.is_visible()
    assert page.get_by_role("link", name=re.compile("Compare the top")).count() == 0
    assert scatter(page).get_by_role("link").count() == 1
    axe(page)
    shot(page, "job-one-candidate")
    page.goto(hub.url + "jobs/halted")
    assert page.get_by_text("The job was stopped").is_visible()
    assert page.get_by_role("button", name="Stop job").count() == 0
    axe(page)
    page.goto(hub.url + "jobs/gone")  # a job that is not in the workspace
    assert page.get_by_role("heading", name="No job gone").is_visible()
    assert page.get_by_role("alert").filter(has_text="gone").is_visible()
    page.watch.errors = [e for e in page.watch.errors if "status of 404" not in e]
    axe(page)


def test_the_job_page_leads_to_exploration_compare_and_notebooks(hub, page, axe) -> None:
    board = leaderboard(hub.store, "many")
    best = list(board["candidate"][:3])
    page.goto(hub.url + "jobs/many")
    actions = page.get_by_role("group", name="Work with this job")
    assert actions.get_by_role("button", name="Open in notebook").is_visible()
    assert actions.get_by_role("button", name="New notebook").is_visible()
    actions.get_by_role("link", name="Explore the data").click()
    page.wait_for_url(re.compile(r"/studio/jobs/many/explore$"))
    assert page.get_by_role("alert").filter(has_text="no data exploration yet").is_visible()
    # that page answers 404 (nothing to explore yet), which the console reports: expected
    page.watch.errors = [e for e in page.watch.errors if "status of 404" not in e]

    page.goto(hub.url + "jobs/many")
    page.get_by_role("link", name="Compare the top 3 candidates").click()
    page.wait_for_url(re.compile(r"/studio/compare\?"))
    table = page.get_by_role("table").first
    for name in best:
        assert table.get_by_role("link", name=f"many/{name}").is_visible()
    axe(page)

    page.goto(hub.url + "jobs/many?page=2")
    ticked = list(board["candidate"][50:52])
    for name in ticked:
        page.get_by_label(f"Compare {name}", exact=True).check()
    page.get_by_role("button", name="Compare the ticked candidates").click()
    page.wait_for_url(re.compile(r"/studio/compare\?"))
    for name in ticked:
        assert page.get_by_role("link", name=f"many/{name}").first.is_visible()

    page.goto(hub.url + "jobs/many")
    page.get_by_label(re.compile("with the chosen model of")).select_option("other")
    page.get_by_role("button", name="Compare with that job").click()
    page.wait_for_url(re.compile(r"job=other"))
    chosen = hub.store.get_job("other").best_candidate
    assert page.get_by_role("link", name=f"other/{chosen}").first.is_visible()


def test_the_scatter_follows_the_filter_also_as_points_arrive(hub, page, axe, shot) -> None:
    page.goto(hub.url + "jobs/many")
    page.get_by_label("Algorithm", exact=True).select_option("linear")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"algorithm=linear"))
    points = scatter(page).get_by_role("link")
    assert points.count() == 50
    names = [points.nth(i).text_content() for i in range(points.count())]
    assert all("(linear)" in n for n in names)
    assert page.get_by_text(re.compile("linear only, 50 of 200 candidates")).is_visible()
    axe(page)
    shot(page, "job-filtered")

    page.goto(hub.url + "jobs/running?algorithm=linear")
    page.evaluate("window.__loadedOnce = true")
    before = scatter(page).get_by_role("link").count()
    first = page.get_by_role("checkbox").first
    ticked = first.get_attribute("id")
    first.check()
    page.get_by_role("button", name="Stop job").focus()  # a keyboard user's place
    for i, algorithm in ((900, "lightgbm"), (901, "linear")):  # two trials end
        name = f"{algorithm}-{i}"
        hub.store.add_candidate(job="running", name=name, number=i, algorithm=algorithm,
                                family=algorithm, params={}, status="Completed")
        hub.store.update_candidate("running", name, objective=0.97, latency_ms_p50=0.4,
                                   ended=time.time())
    page.wait_for_function("() => !!document.querySelector("
                           "'svg a[href$=\"candidates/linear-901\"]')", timeout=30_000)
    assert page.evaluate("window.__loadedOnce === true")  # no reload happened
    assert page.locator('svg a[href$="candidates/lightgbm-900"]').count() == 0
    assert scatter(page).get_by_role("link").count() == before + 1
    assert page.get_by_text("(linear only)").is_visible()
    assert page.locator(f"#{ticked}").is_checked()  # the tick survived the refresh
    assert page.evaluate("document.activeElement.id") == "stop-job"  # and the focus
    page.get_by_label("Algorithm", exact=True).select_option("")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"/jobs/running\?(?!.*algorithm=linear)"))
    assert page.locator('svg a[href$="candidates/lightgbm-900"]').count() == 1
