"""The Studio's whole journey in Chromium, on a small real table: upload -> choose the
target -> start -> the leaderboard grows without a reload -> open the best candidate ->
deploy -> "try it" answers what `load_model(...).predict` answers -> undeploy. Also the
wizard completed with the keyboard alone (focus visible at each stop), and axe plus light
and dark screenshots of the wizard, candidate, exploration and compare pages."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from tabpilot.automl import load_model
from tabpilot.store import Store

COLUMNS = [0, 1, 2, 3, 4, 5, 30]  # six features and the target: a small real table


def cancer_table(path: Path) -> pd.DataFrame:
    frame = load_breast_cancer(as_frame=True).frame.iloc[:, COLUMNS]
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    frame.to_csv(path, index=False)
    return frame


def focus_is_visible(page) -> bool:
    return page.evaluate("""() => {
        const s = getComputedStyle(document.activeElement);
        return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
    }""")


def tab_to(page, locator, limit: int = 120) -> None:
    """Press Tab until `locator` has the focus; every stop on the way shows its focus."""
    handle = locator.element_handle()
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(el) => document.activeElement === el", handle):
            assert focus_is_visible(page), "the focused control shows no focus ring"
            return
    pytest.fail(f"{locator} was not reached with Tab")


def wait_until(check, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out after {seconds:g} s waiting for {what}")


def test_the_wizard_can_be_completed_with_the_keyboard_alone(studio, page) -> None:
    from playwright.sync_api import expect

    table = studio.workspace / "keyboard.csv"  # under the workspace, an allowed root
    cancer_table(table)
    page.goto(studio.url + "new")
    tab_to(page, page.get_by_label("Path or s3:// URI"))
    page.keyboard.type(str(table))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/studio/new\?data="))
    expect(page.get_by_role("table", name=re.compile("^First 10 rows"))).to_be_visible()
    tab_to(page, page.get_by_label("Target column"))
    page.keyboard.type("target")
    expect(page.get_by_label("Target column")).to_have_value("target")
    expect(page.get_by_role("status").filter(has_text="Suggested")).to_contain_text(
        "2 distinct values -> binary")
    tab_to(page, page.get_by_label("Time limit (seconds)"))
    page.keyboard.press("Control+A")
    page.keyboard.type("20")
    tab_to(page, page.get_by_role("group").filter(has_text="Advanced options").first
           .get_by_text("Advanced options", exact=True))
    page.keyboard.press("Enter")
    for name in ("LightGBM", "Linear model"):
        tab_to(page, page.get_by_role("checkbox", name=name))
        page.keyboard.press("Space")
        expect(page.get_by_role("checkbox", name=name)).to_be_checked()
    expect(page.get_by_label("CLI", exact=True)).to_contain_text(
        "--algorithms lightgbm,linear")
    tab_to(page, page.get_by_role("button", name="Start job"))
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/studio/jobs/[A-Za-z0-9-]+$"))
    name = page.url.rsplit("/", 1)[1]
    expect(page.get_by_role("heading", name=re.compile(f"^Job {name}"))).to_be_visible()
    assert Store.for_workspace(studio.workspace).get_job(name).target == "target"
    tab_to(page, page.get_by_role("button", name="Stop job"))
    page.keyboard.press("Enter")
    wait_until(lambda: Store.for_workspace(studio.workspace).get_job(name).status
               in ("Stopping", "Stopped", "Completed"), 30, "the job to stop")


def test_the_whole_journey(studio, page, axe, shot, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    frame = cancer_table(tmp_path / "cancer.csv")
    page.goto(studio.url + "new")
    page.get_by_label(re.compile(r"^Table file")).set_input_files(tmp_path / "cancer.csv")
    expect(page.get_by_role("status").filter(has_text="ready to upload")).to_be_visible()
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url(re.compile(r"/studio/new\?data="))
    expect(page.get_by_text(f"{len(frame)} rows, 7 columns")).to_be_visible()
    page.get_by_label("Target column").select_option("target")
    expect(page.get_by_role("status").filter(has_text="Suggested")).to_contain_text(
        "metric F1")
    page.get_by_label("Time limit (seconds)").fill("25")
    page.get_by_text("Advanced options", exact=True).click()
    page.get_by_role("checkbox", name="LightGBM").check()
    page.get_by_role("checkbox", name="Linear model").check()
    expect(page.get_by_label("boto3", exact=True)).to_contain_text("'linear-learner'")
    axe(page)
    shot(page, "wizard")
    page.get_by_role("button", name="Start job").click()
    page.wait_for_url(re.compile(r"/studio/jobs/[A-Za-z0-9-]+$"))
    job = page.url.rsplit("/", 1)[1]

    # the leaderboard grows while the page stays the same document (no reload)
    page.evaluate("() => { window.__sameDocument = true; }")
    board = page.get_by_role("table", name=re.compile(r"^Candidates"))
    seen: list[int] = []
    store = Store.for_workspace(studio.workspace)

    def ended() -> bool:
        seen.append(board.get_by_role("link").count() if board.count() else 0)
        return store.get_job(job).status in ("Completed", "Failed", "Stopped")

    wait_until(ended, 240, f"job {job} to end")
    assert store.get_job(job).status == "Completed", store.get_job(job).failure_reason
    wait_until(lambda: page.get_by_role("status").filter(has_text="Completed").count() > 0,
               20, "the page to say Completed")
    final = board.get_by_role("link").count()
    assert min(seen) < final, f"the leaderboard did not grow; rows seen over time: {seen}"
    assert page.evaluate("() => window.__sameDocument === true"), "the page was reloaded"

    best = store.get_job(job).best_candidate
    page.get_by_role("link", name=best, exact=True).first.click()
    page.wait_for_url(re.compile(f"/candidates/{best}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(best)
    axe(page)
    shot(page, "candidate")

    endpoint = f"{job}-ep"[:63]
    page.get_by_label("Endpoint name").fill(endpoint)
    page.get_by_label("Capture percent").fill("0")
    page.get_by_role("button", name="Deploy", exact=True).click()
    page.wait_for_url(re.compile(f"/studio/endpoints/{endpoint}$"))

    row = frame.drop(columns="target").iloc[[7]]
    expected = load_model(job, best, studio.workspace).predict(row)[0]
    page.get_by_label("Row (CSV)").fill(",".join(str(v) for v in row.iloc[0]))
    answer = page.get_by_role("region", name="Response")

    def answered() -> bool:
        page.get_by_role("button", name="Send").click()
        try:
            expect(answer).to_contain_text("HTTP", timeout=5000)
        except AssertionError:
            return False
        return "HTTP 200" in answer.inner_text()

    wait_until(answered, 60, "the endpoint to answer")  # it loads within a poll
    assert str(expected) in answer.inner_text()

    page.get_by_role("button", name=f"Undeploy {endpoint}").click()
    wait_until(lambda: endpoint not in {e.name for e in store.list_endpoints()}, 20,
               "the endpoint to be deleted")


def test_the_exploration_and_compare_pages_pass_axe(studio, page, axe, shot) -> None:
    from playwright.sync_api import expect

    store = Store.for_workspace(studio.workspace)
    job = store.get_job(studio.job)
    others = [c.name for c in store.list_candidates(job.name)
              if c.artifact_dir and c.name != job.best_candidate]
    page.goto(studio.url + f"jobs/{job.name}/explore")
    expect(page.get_by_role("heading", name=f"Data exploration: {job.name}")).to_be_visible()
    expect(page.get_by_role("table", name=re.compile("prediction power"))).to_be_visible()
    axe(page)
    shot(page, "explore")
    page.goto(studio.url + f"compare?c={job.name}/{job.best_candidate}&c={job.name}/{others[0]}")
    expect(page.get_by_role("table", name=re.compile(r"^2 candidates"))).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("^ROC curves"))).to_be_visible()
    page.wait_for_function("() => document.querySelectorAll('.uplot').length >= 2")
    axe(page)
    shot(page, "compare")
    page.goto(studio.url + "compare")
    expect(page.get_by_label(re.compile("^Candidates \\(choose two"))).to_be_visible()
    axe(page)
