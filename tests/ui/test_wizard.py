"""The new-job wizard: the streamed upload and its refusals, the preview with column kinds,
the suggested problem type and metric with the reason, "show as code", and Start, which
creates the job through the SageMaker facade's CreateAutoMLJobV2 (its worker process is
ended by the test once the job row and request are checked)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from html import unescape
from pathlib import Path
from urllib.parse import urlencode

import pytest
from studiolib import client, csrf, studio_app

from tabpilot.api.context import ApiContext
from tabpilot.api.jobs import KIND, job_request
from tabpilot.api.locations import Locations
from tabpilot.errors import ConfigError
from tabpilot.store import Store
from tabpilot.ui import upload
from tabpilot.ui.jobform import JobForm

ROWS = "\n".join(f"{i},{['red', 'blue', 'green'][i % 3]},{i * 0.5},{'yes' if i % 4 < 2 else 'no'}"
                 for i in range(80))
TABLE = ("age,colour,score,churn\n" + ROWS + "\n").encode()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wizard")


@pytest.fixture(scope="module")
def http(workspace: Path):
    return client(studio_app(workspace))


@pytest.fixture(scope="module")
def uploaded(http, workspace: Path) -> str:
    token = csrf(http, "/studio/new")
    answer = http.put("/api/v1/uploads", params={"name": "churn small.csv"}, content=TABLE,
                      headers={"X-CSRF-Token": token})
    assert answer.status_code == 201, answer.text
    return answer.json()["path"]


def _alert(html: str) -> str:
    found = re.search(r'role="alert"[^>]*>([^<]*)<', html)
    assert found, "no error line on the page"
    return unescape(found.group(1))


def test_upload_streams_into_the_workspace_under_a_fresh_name(uploaded: str,
                                                              workspace: Path) -> None:
    path = Path(uploaded)
    assert path.parent == workspace.resolve() / "uploads"
    assert re.fullmatch(r"[0-9a-f]{8}-churn small\.csv", path.name)
    assert path.read_bytes() == TABLE
    assert not list(path.parent.glob(".*.part"))


@pytest.mark.parametrize("name, words", [
    ("../escape.csv", "folder part"), ("/etc/passwd.csv", "folder part"),
    ("notes.exe", "not a table"), ("", "no file name"), ("a\x00b.csv", "not allowed")])
def test_upload_refuses_a_name_that_is_not_a_plain_table_name(http, name: str, words: str
                                                              ) -> None:
    token = csrf(http, "/studio/new")
    answer = http.put("/api/v1/uploads", params={"name": name}, content=b"a,b\n1,2\n",
                      headers={"X-CSRF-Token": token})
    assert answer.status_code == 400
    assert words in answer.json()["message"]


def test_upload_without_the_csrf_token_is_refused(http) -> None:
    answer = http.put("/api/v1/uploads", params={"name": "x.csv"}, content=b"a,b\n1,2\n")
    assert answer.status_code == 403


def test_an_upload_over_the_cap_is_cut_off_and_leaves_nothing(tmp_path: Path) -> None:
    async def body():
        for _ in range(10):
            yield b"x" * 1000

    with pytest.raises(upload.UploadError, match="upload limit"):
        asyncio.run(upload.save(body(), tmp_path, "big.csv", max_bytes=5000))
    with pytest.raises(upload.UploadError, match="upload limit"):  # by Content-Length
        asyncio.run(upload.save(body(), tmp_path, "big.csv", max_bytes=5000, declared=10_000))
    assert list((tmp_path / "uploads").iterdir()) == []


def test_the_upload_cap_is_the_servers_body_cap(tmp_path: Path) -> None:
    http = client(studio_app(tmp_path, max_body_mb=0.01))
    page = http.get("/studio/new").text
    assert "up to 0.01 MiB" in page
    token = csrf(http, "/studio/new")
    answer = http.put("/api/v1/uploads", params={"name": "big.csv"}, content=b"x" * 20_000,
                      headers={"X-CSRF-Token": token})
    assert answer.status_code == 413 and "--max-body-mb" in answer.json()["message"]


def test_preview_shows_rows_kinds_and_the_suggestion_with_its_reason(http, uploaded: str
                                                                     ) -> None:
    page = http.get("/studio/new", params={"data": uploaded})
    assert page.status_code == 200
    assert "80 rows, 4 columns" in page.text
    assert re.search(r"colour<br><span[^>]*>categorical", page.text)
    assert re.search(r"score<br><span[^>]*>numeric", page.text)
    chosen = http.get("/studio/new", params={"data": uploaded, "target": "churn"}).text
    assert "2 distinct values -&gt; binary" in chosen
    assert "F1" in chosen and "default objective for BinaryClassification" in chosen
    api = http.get("/api/v1/tables/suggestion", params={"data": uploaded, "target": "score"})
    assert api.json()["problem_type"] == "regression"
    assert api.json()["reason"] == "80 distinct numbers -> regression"


def test_a_parquet_upload_previews_like_a_csv(http) -> None:
    import io

    import pandas as pd

    buffer = io.BytesIO()
    pd.DataFrame({"x": [1.5, 2.5, 3.5], "when": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-05"]),
                  "y": ["a", "b", "a"]}).to_parquet(buffer)
    token = csrf(http, "/studio/new")
    path = http.put("/api/v1/uploads", params={"name": "t.parquet"}, content=buffer.getvalue(),
                    headers={"X-CSRF-Token": token}).json()["path"]
    table = http.get("/api/v1/tables", params={"data": path}).json()
    assert table["rows"] == 3 and table["bytes"] == len(buffer.getvalue())
    assert {c["name"]: c["kind"] for c in table["columns"]}["when"] == "datetime"


def test_the_listing_offers_tables_under_the_roots_but_not_the_workspace_state(
        http, uploaded: str) -> None:
    roots = http.get("/api/v1/data-roots").json()["roots"]
    paths = [f["path"] for r in roots for f in r["files"]]
    assert uploaded in paths
    assert not any("/jobs/" in p or p.endswith("tabpilot.db") for p in paths)


@pytest.mark.parametrize("data, words", [
    ("/etc/passwd", "outside the allowed roots"), ("nowhere.csv", "does not exist")])
def test_a_location_outside_the_roots_or_missing_is_one_line(http, data: str, words: str
                                                             ) -> None:
    page = http.get("/studio/new", params={"data": data})
    assert page.status_code == 400
    assert words in _alert(page.text)
    assert "Traceback" not in page.text


def test_show_as_code_follows_the_form(http, uploaded: str) -> None:
    code = http.get("/api/v1/code/job", params=[
        ("data", uploaded), ("target", "churn"), ("name", "code-job"), ("time_limit", "60"),
        ("algorithms", "lightgbm"), ("algorithms", "linear"), ("folds", "3"),
        ("max_latency_ms", "5"), ("kind:colour", "text")]).json()
    assert code["cli"].startswith(f"tabpilot run '{uploaded}'")
    assert "--algorithms lightgbm,linear" in code["cli"] and "--folds 3" in code["cli"]
    assert "AutoML(\n    'churn',\n    time_limit=60," in code["python"]
    assert "folds=3" in code["python"] and "max_latency_ms=5.0" in code["python"]
    assert "sagemaker.create_auto_ml_job_v2(" in code["boto3"]
    assert "'tabpilot:folds', 'Value': '3'" in code["boto3"]
    assert "'linear-learner'" in code["boto3"] and "code-job-features.json" in code["boto3"]


def test_a_bad_field_is_one_line() -> None:
    with pytest.raises(ConfigError, match="folds must be a whole number"):
        JobForm.parse([("folds", "three")])
    with pytest.raises(ConfigError, match="validation fraction must be between"):
        JobForm.parse([("validation_fraction", "0.9")])
    with pytest.raises(ConfigError, match="not both"):
        JobForm.parse([("folds", "5"), ("validation_fraction", "0.2")])


def test_start_creates_the_job_through_the_facade(http, uploaded: str,
                                                  workspace: Path) -> None:
    token = csrf(http, "/studio/new")
    answer = http.post("/studio/new", content=urlencode([
        ("csrf_token", token), ("data", uploaded), ("target", "churn"), ("name", "wiz-1"),
        ("time_limit", "30"), ("algorithms", "linear"), ("folds", "3"),
        ("max_latency_ms", "50"), ("kind:age", "exclude"), ("kind:colour", "categorical")]),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    store = Store.for_workspace(workspace)
    try:
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "jobs/wiz-1"
        job = store.get_job("wiz-1")
        assert job.target == "churn" and job.input_uri == uploaded
        request = store.get_resource(KIND, "wiz-1").spec["request"]
        assert request["AutoMLProblemTypeConfig"]["TabularJobConfig"][
            "CandidateGenerationConfig"] == {"AlgorithmsConfig": [
                {"AutoMLAlgorithms": ["linear-learner"]}]}
        ctx = ApiContext(store, workspace, Locations(workspace))
        asked = job_request(ctx, request)  # what the worker runs
        assert (asked.n_folds, asked.max_latency_ms, asked.algorithms) == (3, 50.0, ["linear"])
        spec = json.loads(Path(asked.feature_types).read_text())
        assert spec == {"FeatureDataTypes": {"colour": "categorical"},
                        "FeatureAttributeNames": ["colour", "score"]}
    finally:
        pid = store.get_job("wiz-1").pid if store.job_exists("wiz-1") else None
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)  # the worker this test started
            except ProcessLookupError:
                pass
    again = http.post("/studio/new", data={"csrf_token": token, "data": uploaded,
                                           "target": "churn", "name": "wiz-1"})
    assert again.status_code == 400
    assert _alert(again.text) == "Job with name wiz-1 already exists."


@pytest.mark.parametrize("fields, words", [
    ({"target": ""}, "choose the target"),
    ({"target": "nope"}, "no column 'nope'"),
    ({"time_limit": "-5"}, "time limit must be more than 0"),
    ({"sample_weight": "churn"}, "cannot be the target"),
    ({"name": "bad name!"}, "job name")])
def test_start_with_bad_input_says_what_on_the_page(http, uploaded: str, fields: dict,
                                                    words: str) -> None:
    token = csrf(http, "/studio/new")
    form = {"csrf_token": token, "data": uploaded, "target": "churn", "time_limit": "30",
            **fields}
    answer = http.post("/studio/new", data=form)
    assert answer.status_code == 400
    assert words in _alert(answer.text)


def test_start_without_the_csrf_token_is_refused(http, uploaded: str) -> None:
    answer = http.post("/studio/new", data={"data": uploaded, "target": "churn"})
    assert answer.status_code == 403


def test_the_facade_reads_tabpilot_options_from_tags() -> None:
    from tabpilot.api.jobs import tag_options
    from tabpilot.api.shapes import ApiError

    assert tag_options([{"Key": "tabpilot:folds", "Value": "5"}, {"Key": "team", "Value": "x"},
                        {"Key": "tabpilot:max-latency-ms", "Value": "2.5"}]) == {
        "n_folds": 5, "max_latency_ms": 2.5}
    with pytest.raises(ApiError, match="tabpilot:folds: 'five' is not a whole number"):
        tag_options([{"Key": "tabpilot:folds", "Value": "five"}])
