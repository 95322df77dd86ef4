"""The endpoints, batch-transform and notebooks pages in Chromium, offline, with axe in
light and dark: deploy a candidate, "Try it" returns the model's own prediction, the live
statistics count it without a reload, undeploy; a batch transform from an uploaded file
runs to Completed with its rows counted; "Open in notebook" starts JupyterLab on loopback.
Screenshots land in docs/screenshots/."""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from conftest import Studio, start_server, stop_server
from tabpilot.automl import load_model
from tabpilot.store import Store

sys.path.insert(0, str(Path(__file__).parents[1] / "ui"))
sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))
from servinglib import build_model, churn_table  # noqa: E402
from studiolib import add_job  # noqa: E402

ENDPOINT = "uc-browser"
JOB = "churn"


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory):
    """A server over a finished job whose two candidates are real packaged models (built in
    a second, where a job writes them): these pages need models, not a search, and a
    search on a loaded machine is what makes a browser test flaky."""
    workspace = tmp_path_factory.mktemp("uc-studio") / "workspace"
    workspace.mkdir()
    store = Store.for_workspace(workspace)
    add_job(store, JOB, status="Completed", secondary="Completed", n=2)
    job_dir = workspace / "jobs" / JOB
    for name, inverted in (("lightgbm-000", False), ("linear-001", True)):
        model = build_model(job_dir / "candidates" / name / "model", inverted=inverted)
        store.update_candidate(JOB, name, artifact_dir=str(model))
    store.update_job(JOB, best_candidate="lightgbm-000")
    churn_table(20, seed=5).to_parquet(job_dir / "validation_sample.parquet")
    server: Studio = start_server(workspace)
    server.job = JOB
    yield server
    stop_server(server)


def _reload_until(page, text: str, seconds: float = 60) -> None:
    """The server loads a new endpoint within its one-second poll; reload until it says so."""
    for _ in range(int(seconds * 2)):
        if text in page.get_by_role("heading", level=1).inner_text():
            return
        page.wait_for_timeout(500)
        page.reload()
    raise AssertionError(f"the page never said {text!r}")


def test_deploy_try_it_live_stats_and_undeploy(studio, page, axe, shot) -> None:
    from playwright.sync_api import expect  # the browser extra

    page.goto(studio.url + "endpoints")
    assert page.get_by_role("heading", name="Endpoints", exact=True).is_visible()
    axe(page)
    page.get_by_label("Endpoint name").fill(ENDPOINT)
    model = page.get_by_label("Model", exact=True)
    best = model.locator("option", has_text="(chosen)").first.get_attribute("value")
    model.select_option(best)
    page.get_by_role("button", name="Deploy", exact=True).click()
    page.wait_for_url(re.compile(rf"/studio/endpoints/{ENDPOINT}$"))
    _reload_until(page, "InService")

    row = page.get_by_label("Row (CSV)")
    sample = row.input_value()
    job, candidate = best.split("/")
    served = load_model(job, candidate, studio.workspace)
    frame = pd.read_csv(pd.io.common.StringIO(sample), header=None, names=served.features)
    expected = str(served.predict(frame)[0])
    page.get_by_role("button", name="Send", exact=True).click()
    response = page.get_by_role("region", name="Response")
    response.get_by_text("HTTP 200").wait_for()
    answer = json.loads(response.locator("pre").inner_text())
    assert answer["predictions"][0]["predicted_label"] == expected
    # the traffic figures count it at once, from the server's metrics, without a reload
    traffic = page.get_by_role("group", name=re.compile(r"^Traffic"))
    expect(traffic).to_contain_text("1 requests", timeout=30_000)
    axe(page)
    shot(page, "endpoint")

    page.get_by_role("link", name="All endpoints").click()
    listed = page.get_by_role("row").filter(
        has=page.get_by_role("link", name=ENDPOINT, exact=True))
    expect(listed.get_by_role("cell").nth(3)).to_have_text("1")  # requests, from the metrics
    axe(page)
    shot(page, "endpoints")

    listed.get_by_role("button", name=f"Undeploy {ENDPOINT}").click()
    page.wait_for_url(re.compile(r"/studio/endpoints$"))
    assert page.get_by_role("link", name=ENDPOINT, exact=True).count() == 0


def test_batch_transform_of_an_uploaded_file(studio, page, axe, shot, tmp_path) -> None:
    from playwright.sync_api import expect  # the browser extra

    rows = churn_table(25, seed=9).drop(columns="label")
    upload = tmp_path / "patients.csv"
    rows.to_csv(upload, index=False)
    page.goto(studio.url + "transforms")
    axe(page)
    page.get_by_label("Or upload a file").set_input_files(str(upload))
    page.get_by_role("button", name="Start transform").click()
    page.wait_for_url(re.compile(r"/studio/transforms\?started="))
    name = re.search(r"started=([\w-]+)", page.url).group(1)
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=name))
    expect(row).to_contain_text("Completed", timeout=120_000)  # polled, no reload
    expect(row).to_contain_text("1 of 1 file done, 25 rows written")
    download = row.get_by_role("link", name=re.compile(r"^Download .*patients\.csv\.out$"))
    expect(download).to_be_visible()
    axe(page)
    shot(page, "transforms")


def test_open_in_notebook_starts_jupyterlab(studio, page, axe, shot) -> None:
    page.goto(studio.url + f"notebooks/?job={studio.job}")
    axe(page)
    page.get_by_role("button", name=f"Open in notebook: {studio.job}").click()
    link = page.get_by_role("link", name=f"Open jobs/{studio.job} in JupyterLab")
    link.wait_for(timeout=120_000)
    href = link.get_attribute("href")
    assert re.match(rf"http://127\.0\.0\.1:\d+/lab/tree/jobs/{studio.job}\?token=", href)
    token = href.split("token=")[1]
    base = href.split("/lab/")[0]
    request = urllib.request.Request(f"{base}/api/status",
                                     headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    axe(page)
    shot(page, "notebooks")
    page.get_by_role("button", name="Stop JupyterLab").click()
    page.get_by_text("Not running").wait_for()
