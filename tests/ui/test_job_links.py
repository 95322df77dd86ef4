"""Where the job page leads (its data exploration, Compare, the notebooks) and how its
accuracy-latency scatter follows the leaderboard's algorithm filter, on the first render
and on the live part a running job's page fetches when its event stream says it changed."""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path

import pytest
from studiolib import add_job, client, studio_app

from tabpilot.jobs.views import leaderboard
from tabpilot.store import Store
from tabpilot.ui import jupyter


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("job-links")
    store = Store.for_workspace(root)
    now = time.time()
    add_job(store, "many", "Completed", "Completed", n=200, started=now - 600)
    add_job(store, "other", "Completed", "Completed", n=3, started=now - 500)
    add_job(store, "reg", "Completed", "Completed", n=2, started=now - 400, metric="MSE",
            problem_type="regression")
    add_job(store, "single", "Completed", "Completed", n=1, started=now - 300)
    add_job(store, "running", n=4, best=False, started=now - 20)
    return root


@pytest.fixture(scope="module")
def http(workspace: Path):
    return client(studio_app(workspace))


def _svg(page: str) -> str:
    return page[page.index("<svg"):page.index("</svg>")]


def _points(page: str) -> dict[str, str]:
    """Each scatter point's candidate and the position of its mark."""
    return dict(re.findall(r'<a href="[^"]*candidates/([^"]+)"><title>[^<]*</title>'
                           r'<(?:circle|polygon) class="point[^"]*" ([^/]+)/>', _svg(page)))


def _csrf(page: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)


def test_the_job_page_links_to_its_data_exploration(http, workspace: Path) -> None:
    page = http.get("/studio/jobs/other").text
    assert 'href="other/explore"' in page and "Explore the data" in page
    assert "not written yet" in page
    assert http.get("/studio/jobs/other/explore").status_code == 404  # says it is missing
    job_dir = Path(Store.for_workspace(workspace).get_job("single").job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / "data_exploration.json").write_text(json.dumps({"insights": []}))
    written = http.get("/studio/jobs/single").text
    assert 'href="single/explore"' in written and "not written yet" not in written


def test_compare_the_top_candidates_preselects_the_best_three(http, workspace: Path) -> None:
    page = http.get("/studio/jobs/many?sort=latency_ms_p50&page=3").text  # any view
    board = leaderboard(Store.for_workspace(workspace), "many")
    best = list(board["candidate"][:3])
    link = re.search(r'<a class="button" href="([^"]+)">Compare the top 3 candidates</a>', page)
    assert link, "no 'compare the top candidates' link"
    href = html.unescape(link.group(1))
    assert href == "../compare?" + "&".join(f"c=many%2F{c}" for c in best)
    compared = http.get("/studio/" + href.removeprefix("../")).text
    assert compared.count("many/" + best[0]) >= 1 and all(c in compared for c in best)
    filtered = http.get("/studio/jobs/many?algorithm=linear").text  # the view's algorithm
    linear = list(board.loc[board["algorithm"] == "linear", "candidate"][:3])
    link = re.search(r'href="([^"]+)">Compare the top 3 linear candidates</a>', filtered)
    assert html.unescape(link.group(1)) == "../compare?" + "&".join(
        f"c=many%2F{c}" for c in linear)


def test_too_few_candidates_offer_no_top_comparison(http) -> None:
    assert "Compare the top" not in http.get("/studio/jobs/single").text
    assert "Compare the top 2 candidates" in http.get("/studio/jobs/reg").text


def test_every_row_can_be_ticked_for_compare(http) -> None:
    page = http.get("/studio/jobs/many").text
    boxes = re.findall(r'<input type="checkbox" form="compare-picked" name="c" '
                       r'value="many/([^"]+)" id="pick-\1" aria-label="Compare \1">', page)
    rows = re.findall(r'<th scope="row"><a href="many/candidates/([^"]+)">', page)
    assert boxes == rows and len(boxes) == 50
    assert re.search(r'<form id="compare-picked" method="get" action="../compare">', page)
    answer = http.get(f"/studio/compare?c=many/{boxes[0]}&c=many/{boxes[7]}")
    assert answer.status_code == 200 and f"many/{boxes[7]}" in answer.text


def test_compare_with_another_jobs_best_offers_jobs_of_the_same_kind(http,
                                                                      workspace: Path) -> None:
    store = Store.for_workspace(workspace)
    page = http.get("/studio/jobs/many").text
    form = page[page.index('<label for="f-partner">'):]
    form = form[:form.index("</form>")]
    offered = re.findall(r'<option value="([^"]+)">', form)
    assert offered == ["single", "other"]  # newest first; binary with a chosen model
    chosen = store.get_job("many").best_candidate
    assert f'<input type="hidden" name="c" value="many/{chosen}">' in page
    answer = http.get(f"/studio/compare?c=many/{chosen}&job=other")
    assert answer.status_code == 200
    assert f"other/{store.get_job('other').best_candidate}" in answer.text
    # a running job has no chosen model yet: its best so far stands in
    running = http.get("/studio/jobs/running").text
    leader = leaderboard(store, "running")["candidate"].iloc[0]
    assert f'name="c" value="running/{leader}"' in running
    assert "No other regression job has a chosen model" in http.get("/studio/jobs/reg").text


def test_the_notebook_buttons_post_to_the_notebooks_routes(tmp_path: Path,
                                                           monkeypatch) -> None:
    add_job(Store.for_workspace(tmp_path), "nb", "Completed", "Completed", n=2)
    http = client(studio_app(tmp_path))
    page = http.get("/studio/jobs/nb").text
    token = _csrf(page)
    for action, label in (("open", "Open in notebook"), ("new", "New notebook")):
        form = re.search(rf'<form method="post" action="../notebooks/{action}">(.*?)</form>',
                         page, re.S)
        assert form and label in form.group(1)
        assert f'name="csrf_token" value="{token}"' in form.group(1)
        assert '<input type="hidden" name="job" value="nb">' in form.group(1)
    monkeypatch.setattr(jupyter, "available", lambda: False)  # no JupyterLab started here
    answer = http.post("/studio/notebooks/new", data={"csrf_token": token, "job": "nb"})
    assert answer.status_code == 400 and "JupyterLab is not installed" in answer.text
    assert http.post("/studio/notebooks/open", data={"job": "nb"}).status_code == 403


def test_the_scatter_follows_the_algorithm_filter(http, workspace: Path) -> None:
    everything = _points(http.get("/studio/jobs/many").text)
    page = http.get("/studio/jobs/many?algorithm=linear").text
    shown = _points(page)
    board = leaderboard(Store.for_workspace(workspace), "many")
    linear = set(board.loc[board["algorithm"] == "linear", "candidate"])
    assert len(everything) == 200 and set(shown) == linear and len(linear) == 50
    assert all(shown[c] == everything[c] for c in shown)  # same axes: same places
    assert all("(linear)" in t for t in re.findall(r"<title>([^<]+)</title>", _svg(page)))
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))
    assert "linear only, 50 of 200 candidates" in text
    assert "dashed line, over all algorithms" in text


def test_a_filter_without_points_says_so_and_the_chosen_mark_follows(http,
                                                                     workspace: Path) -> None:
    page = http.get("/studio/jobs/many?algorithm=catboost").text
    assert "<svg" not in page and "No catboost candidate has a measured latency" in page
    chosen = Store.for_workspace(workspace).get_job("many").best_candidate
    own = chosen.rsplit("-", 1)[0]
    other = next(a for a in ("linear", "lightgbm") if a != own)
    assert "★ chosen" in _svg(http.get(f"/studio/jobs/many?algorithm={own}").text)
    assert "★ chosen" not in _svg(http.get(f"/studio/jobs/many?algorithm={other}").text)


def test_new_points_of_a_running_job_keep_the_filter(tmp_path: Path) -> None:
    store = Store.for_workspace(tmp_path)
    add_job(store, "live", n=4, best=False)
    http = client(studio_app(tmp_path))
    page = http.get("/studio/jobs/live?algorithm=linear").text
    live = re.search(r'data-live="([^"]+)"', page).group(1)
    assert html.unescape(live) == "live?algorithm=linear&part=live"  # what studio.js fetches
    before = _points(http.get("/studio/jobs/live?algorithm=linear&part=live").text)
    for i, algorithm in ((900, "linear"), (901, "lightgbm")):  # two trials end
        name = f"{algorithm}-{i}"
        store.add_candidate(job="live", name=name, number=i, algorithm=algorithm,
                            family=algorithm, params={}, status="Completed")
        store.update_candidate("live", name, objective=0.95, latency_ms_p50=0.5,
                               ended=time.time())
        store.beat("live")
    after = _points(http.get("/studio/jobs/live?algorithm=linear&part=live").text)
    assert set(after) == set(before) | {"linear-900"}
    assert "lightgbm-901" in _points(http.get("/studio/jobs/live?part=live").text)
