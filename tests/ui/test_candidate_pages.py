"""The candidate, data exploration and compare pages on a real finished job (two
candidates, no time left for reports: the pages compute the insights and importance from
what the job saved), and their downloads and Deploy."""

from __future__ import annotations

import io
import re
import tarfile
import time
from html import unescape
from pathlib import Path

import pytest
from sklearn.datasets import load_breast_cancer
from studiolib import client, csrf, studio_app

from tabpilot.automl import AutoML, load_model
from tabpilot.store import Store

JOB = "cand-pages"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("candidate-pages")
    frame = load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, 3, 4, 5, 30]]
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    AutoML("target", time_limit=20, algorithms=["lightgbm", "linear"], max_candidates=2,
           ensemble=False, distill=False, stacking="off", name=JOB, workspace=root,
           verbosity=0).fit(frame)
    store = Store.for_workspace(root)
    job = store.get_job(JOB)
    assert job.best_candidate, f"the job ended {job.status}: {job.failure_reason}"
    for cand in store.list_candidates(JOB):  # as when the job had no time left for reports
        if cand.name != job.best_candidate and cand.artifact_dir:
            for name in ("insights.json", "explanations.json"):
                (Path(cand.artifact_dir).parent / name).unlink(missing_ok=True)
    store.add_candidate(job=JOB, name="xgboost-009", number=9, algorithm="xgboost",
                        family="xgboost", params={}, status="Failed", trained_on="train")
    store.update_candidate(JOB, "xgboost-009", failure_reason="the trial ran out of memory",
                           ended=time.time())
    return root


@pytest.fixture(scope="module")
def http(workspace: Path):
    return client(studio_app(workspace))


@pytest.fixture(scope="module")
def best(workspace: Path) -> str:
    return Store.for_workspace(workspace).get_job(JOB).best_candidate


def _page(http, best: str, **params) -> str:
    answer = http.get(f"/studio/jobs/{JOB}/candidates/{best}", params=params)
    assert answer.status_code == 200, answer.text[-2000:]
    return answer.text


def _alert(html: str) -> str:
    found = re.search(r'role="alert"[^>]*>([^<]*)<', html)
    assert found, "no error line on the page"
    return unescape(found.group(1))


def test_metrics_come_with_intervals_and_charts_from_their_own_routes(http, best: str
                                                                      ) -> None:
    html = _page(http, best)
    row = re.search(r"<th scope=\"row\">F1 \(objective\)</th><td class=\"num\">([\d.]+)</td>"
                    r"<td class=\"num\">([\d.]+) to ([\d.]+)</td>", html)
    assert row, "the objective's row with its interval"
    value, lower, upper = map(float, row.groups())
    assert lower <= value <= upper
    charts = re.findall(r'<img src="([^"]+\.png)"', html)
    names = {Path(c).stem for c in charts}
    assert {"roc", "pr", "confusion", "gain", "lift", "calibration", "importance"} <= names
    assert all(not c.startswith(("/", "http", "data:")) for c in charts)  # relative, no data:
    assert "data:image" not in html
    assert not re.search(r"<[a-z][^>]*\sstyle=", html)  # the CSP's rule: no style attributes
    assert html.count("as a table</summary>") >= 7  # every chart has its numbers
    image = http.get(f"/studio/jobs/{JOB}/candidates/{best}/charts/roc.png")
    assert image.headers["content-type"] == "image/png" and image.content[:4] == b"\x89PNG"
    assert http.get(f"/studio/jobs/{JOB}/candidates/{best}/charts/nope.png").status_code == 404


def test_importance_is_on_the_raw_columns_saved_or_computed(http, workspace: Path) -> None:
    """The best candidate's from the job's reports; the other's (its reports removed)
    computed from the validation predictions and sample."""
    for cand in Store.for_workspace(workspace).list_candidates(JOB):
        if not cand.artifact_dir:
            continue
        found = http.get(f"/api/v1/jobs/{JOB}/candidates/{cand.name}").json()
        columns = {f["feature"] for f in found["importance"]["importance"]}
        assert columns == {"mean radius", "mean texture", "mean perimeter", "mean area",
                           "mean smoothness", "mean compactness"}
        f1 = found["insights"]["metrics"]["F1"]
        assert f1["lower"] <= f1["value"] <= f1["upper"]
        saved = (Path(cand.artifact_dir).parent / "explanations.json").is_file()
        assert found["importance"]["computed_here"] is not saved


def test_a_row_is_explained_picked_or_pasted(http, best: str, workspace: Path) -> None:
    html = _page(http, best, pick="3")
    assert 'aria-label="Explanation"' in html and "validation row 3" in html
    pasted = re.search(r'<textarea id="explain-row"[^>]*>([^<]+)</textarea>', html).group(1)
    again = _page(http, best, row=pasted)
    predicted = re.search(r"Prediction for the row given: <strong>([^<]+)</strong>", again)
    model = load_model(JOB, best, workspace)
    import pandas as pd

    frame = pd.DataFrame([[float(v) for v in pasted.split(",")]], columns=model.features)
    assert predicted.group(1) == str(model.predict(frame)[0])
    wrong = _page(http, best, row="1,2,3")
    assert "expected 6" in _alert(wrong)
    assert "does not exist" in _alert(_page(http, best, pick="100000"))


def test_the_notebook_section_is_rendered_as_code(http, best: str) -> None:
    html = _page(http, best)
    assert "CandidateDefinitions.ipynb" in html
    assert re.search(r'<pre tabindex="0" aria-label="Code cell \d+"><code>', html)


def test_the_model_archive_streams_a_verified_directory(http, best: str) -> None:
    answer = http.get(f"/studio/jobs/{JOB}/candidates/{best}/model.tar.gz")
    assert answer.status_code == 200
    assert "attachment" in answer.headers["content-disposition"]
    with tarfile.open(fileobj=io.BytesIO(answer.content), mode="r:gz") as tar:
        names = tar.getnames()
    assert f"{JOB}-{best}/manifest.json" in names
    assert f"{JOB}-{best}/metadata.json" in names


def test_the_exported_script_is_python(http, best: str) -> None:
    answer = http.get(f"/studio/jobs/{JOB}/candidates/{best}/script.py")
    assert answer.status_code == 200
    compile(answer.text, "script.py", "exec")
    assert "tabpilot" in answer.text[:400] and "def main" in answer.text


def test_deploy_refuses_a_bad_name_then_deploys(http, best: str, workspace: Path) -> None:
    url = f"/studio/jobs/{JOB}/candidates/{best}/deploy"
    token = csrf(http, f"/studio/jobs/{JOB}/candidates/{best}")
    assert http.post(url, data={"endpoint": "ep-a"}).status_code == 403  # no CSRF token
    bad = http.post(url, data={"csrf_token": token, "endpoint": "bad name!"})
    assert bad.status_code == 400 and "endpoint name" in _alert(bad.text)
    over = http.post(url, data={"csrf_token": token, "endpoint": "ep-a",
                                "capture_percent": "120"})
    assert over.status_code == 400 and "between 0 and 100" in _alert(over.text)
    done = http.post(url, data={"csrf_token": token, "endpoint": "ep-a",
                                "capture_percent": "10"})
    assert done.status_code == 303 and done.headers["location"].endswith("endpoints/ep-a")
    row = Store.for_workspace(workspace).get_endpoint("ep-a")
    assert row.capture_percent == 10 and Path(row.model_dir).parent.name == best
    code = http.get("/api/v1/code/deploy", params={"job": JOB, "candidate": best,
                                                   "endpoint": "ep-a"}).json()
    assert code["cli"].startswith(f"tabpilot deploy {JOB} \\\n    --candidate {best}")
    assert "sagemaker.create_endpoint(" in code["boto3"]


def test_a_candidate_without_a_model_or_unknown_says_so(http) -> None:
    failed = http.get(f"/studio/jobs/{JOB}/candidates/xgboost-009")
    assert failed.status_code == 200
    assert "no packaged model" in _alert(failed.text) and "ran out of memory" in failed.text
    missing = http.get(f"/studio/jobs/{JOB}/candidates/lightgbm-777")
    assert missing.status_code == 404 and "lightgbm-777" in _alert(missing.text)


def test_the_exploration_is_rendered_natively(http) -> None:
    html = http.get(f"/studio/jobs/{JOB}/explore").text
    assert "Prediction power" in html and "Rows per class" in html
    assert re.search(r"<th scope=\"row\">benign</th><td class=\"num\">\d+", html)
    assert "{&#34;" not in html and '{"rows"' not in html  # not the raw JSON
    image = http.get(f"/studio/jobs/{JOB}/explore/by-column/0.png")
    assert image.status_code == 200 and image.content[:4] == b"\x89PNG"
    missing = http.get("/studio/jobs/no-such-job/explore")
    assert missing.status_code == 404 and "no-such-job" in _alert(missing.text)


def test_compare_puts_candidates_side_by_side(http, workspace: Path) -> None:
    names = sorted(c.name for c in Store.for_workspace(workspace).list_candidates(JOB)
                   if c.artifact_dir)
    html = http.get("/studio/compare", params=[("c", f"{JOB}/{n}") for n in names]).text
    table = html[html.index('id="compare-table"'):]
    assert table.count('<span class="mark">best</span>') >= 1
    assert "latency p50 per row" in table and "model size" in table
    assert 'id="compare-curves"' in html and 'role="img"' in html
    found = http.get("/api/v1/compare", params=[("c", f"{JOB}/{n}") for n in names]).json()
    assert [c["candidate"] for c in found["candidates"]] == names
    assert {c["id"] for c in found["curves"]} == {"roc", "pr"}
    assert all(len(s["y"]) == len(found["curves"][0]["x"]) for s in found["curves"][0]["series"])
    bad = http.get("/studio/compare", params={"c": "no-slash"})
    assert bad.status_code == 400 and "c=JOB/CANDIDATE" in _alert(bad.text)
    picker = http.get("/studio/compare").text
    assert f'value="{JOB}/{names[0]}"' in picker
