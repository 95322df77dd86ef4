"""The endpoints and batch-transform pages on a real server app: deploy, try it, live
statistics from the Prometheus metrics, captures, swap, undeploy, a batch transform run by
the real worker, and the refusals (CSRF, bad names, locations outside the roots).

The job is a store row whose candidates are real packaged LightGBM models (two that
disagree, so a swap shows), written where a job writes them: building them takes about a
second, a real AutoML job several."""

from __future__ import annotations

import re
import sys
from html import unescape
from pathlib import Path

import pandas as pd
import pytest
from studiolib import add_job, client, csrf, studio_app

from tabpilot.artifacts import load
from tabpilot.store import Store
from tabpilot.ui import hosting
from tabpilot.ui.live_stats import Window, quantile

sys.path.insert(0, str(Path(__file__).parent.parent / "serving"))
from servinglib import build_model, churn_table, wait_until  # noqa: E402

JOB = "ep-pages"
FIRST, SECOND = "lightgbm-000", "linear-001"  # add_job's names


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("endpoint-pages")
    store = Store.for_workspace(root)
    add_job(store, JOB, status="Completed", secondary="Completed", n=2)
    job_dir = root / "jobs" / JOB
    for name, inverted in ((FIRST, False), (SECOND, True)):
        model = build_model(job_dir / "candidates" / name / "model", inverted=inverted,
                            compiled=False)
        store.update_candidate(JOB, name, artifact_dir=str(model))
    store.update_job(JOB, best_candidate=FIRST)
    churn_table(20, seed=5).to_parquet(job_dir / "validation_sample.parquet")
    churn_table(30, seed=6).drop(columns="label").to_csv(root / "new.csv", index=False)
    return root


@pytest.fixture
def studio(workspace: Path):
    app = studio_app(workspace, poll_seconds=0.2)
    http = client(app)
    yield app, http, csrf(http, "/studio/endpoints")
    for row in Store.for_workspace(workspace).list_endpoints():  # each test starts clean
        hosting.undeploy(app.state.studio_ctx, row.name)


def _deploy(http, token: str, name: str, candidate: str = FIRST, capture: int = 0):
    return http.post("/studio/endpoints", data={
        "csrf_token": token, "endpoint": name, "model": f"{JOB}/{candidate}",
        "capture_percent": str(capture)})


def _sample(html: str) -> str:
    return unescape(re.search(r'<textarea id="row"[^>]*>([^<]*)</textarea>', html).group(1))


def _alert(html: str) -> str:
    return unescape(re.search(r'role="alert">([^<]*)<', html).group(1))


def test_deploy_try_it_stats_and_captures(studio, workspace: Path) -> None:
    app, http, token = studio
    answer = _deploy(http, token, "churn-a", capture=100)
    assert answer.status_code == 303 and answer.headers["location"] == "endpoints/churn-a"
    assert "Creating" in http.get("/studio/endpoints/churn-a").text  # until the server loads it
    app.state.registry.refresh()  # what the server's one-second poll does

    page = http.get("/studio/endpoints/churn-a")
    assert page.status_code == 200
    assert f"{JOB} / {FIRST}" in page.text and "InService" in page.text
    assert 'aria-label="Response"' in page.text and ">Send</button>" in page.text
    row = _sample(page.text)  # a validation row, the model's columns in order
    first = pd.read_parquet(workspace / "jobs" / JOB / "validation_sample.parquet").iloc[0]
    assert row.split(",")[0] == str(first["customer_id"]) and len(row.split(",")) == 4

    tried = http.post("/studio/endpoints/churn-a/try",
                      data={"csrf_token": token, "row": row, "accept": "text/csv"},
                      headers={"HX-Request": "true"})
    assert tried.status_code == 200 and "<html" not in tried.text  # the answer alone
    model = load(workspace / "jobs" / JOB / "candidates" / FIRST / "model")
    frame = pd.read_csv(pd.io.common.StringIO(row), header=None, names=model.features)
    expected = str(model.predict(frame)[0])
    assert re.search(rf"<pre><code>{expected}[,\n]", tried.text)  # label[,probability]

    bad = http.post("/studio/endpoints/churn-a/try",
                    data={"csrf_token": token, "row": "x,y", "accept": "text/csv"})
    assert bad.status_code == 400 and "HTTP 400" in bad.text  # the whole page, the error

    listed = http.get("/api/v1/endpoints").json()["endpoints"]
    stats = next(e for e in listed if e["name"] == "churn-a")["stats"]
    assert stats["requests"] == 2 and stats["errors"] == 1 and stats["error_rate"] == 0.5
    assert stats["p50_ms"] > 0 and stats["p99_ms"] >= stats["p50_ms"]
    metrics = http.get("/metrics").text  # the same requests, as Prometheus sees them
    counted = [line for line in metrics.splitlines()
               if line.startswith("tabpilot_http_requests_total{") and 'model="churn-a"' in line]
    assert sorted(line.rsplit(" ", 1)[1] for line in counted) == ["1.0", "1.0"]  # 200, 400

    rows = http.get("/studio/endpoints?fragment=rows")
    assert rows.status_code == 200 and "<html" not in rows.text and "50.0 %" in rows.text

    captures = http.get("/api/v1/endpoints/churn-a/captures").json()["captures"]
    assert len(captures) == 1 and captures[0]["request"] == row  # the error is not captured
    assert captures[0]["response"].split(",")[0].strip() == expected
    assert row in unescape(http.get("/studio/endpoints/churn-a").text.split("Latest captured")[1])


def test_swap_serves_the_new_model_and_tidies(studio, workspace: Path) -> None:
    app, http, token = studio
    assert _deploy(http, token, "churn-b").status_code == 303
    ctx = app.state.studio_ctx
    made = {r.name for r in ctx.store.list_resources("endpoint-config")}
    answer = http.post("/studio/endpoints/churn-b/swap",
                       data={"csrf_token": token, "model": f"{JOB}/{SECOND}"})
    assert answer.status_code == 303, _alert(answer.text)
    app.state.registry.refresh()  # what the server's one-second poll does
    described = http.get("/api/v1/endpoints/churn-b").json()
    assert described["candidate"] == SECOND and described["version"] == 2
    assert not made & {r.name for r in ctx.store.list_resources("endpoint-config")}

    row = "C00001,10.0,basic,70.0"
    frame = pd.DataFrame([["C00001", 10.0, "basic", 70.0]],
                         columns=["customer_id", "tenure", "plan", "charges"])
    second = load(workspace / "jobs" / JOB / "candidates" / SECOND / "model")
    first = load(workspace / "jobs" / JOB / "candidates" / FIRST / "model")
    assert second.predict(frame)[0] != first.predict(frame)[0]  # they disagree
    served = http.post("/api/v1/endpoints/churn-b/invocations", content=row,
                       headers={"X-CSRF-Token": token, "Content-Type": "text/csv"})
    assert served.status_code == 200
    assert served.text.split(",")[0].strip() == str(second.predict(frame)[0])


def test_undeploy_removes_endpoint_and_what_deploy_made(studio) -> None:
    app, http, token = studio
    assert _deploy(http, token, "churn-c").status_code == 303
    ctx = app.state.studio_ctx
    answer = http.post("/studio/endpoints/churn-c/undeploy", data={"csrf_token": token})
    assert answer.status_code == 303 and answer.headers["location"] == "../../endpoints"
    assert ctx.store.list_endpoints() == []
    assert [r for r in ctx.store.list_resources("model")
            if {"Key": "Use", "Value": "endpoint"} in r.spec["request"]["Tags"]] == []
    assert ctx.store.list_resources("endpoint-config") == []
    page = http.get("/studio/endpoints")
    assert "No endpoints" in page.text
    assert http.get("/studio/endpoints/churn-c").status_code == 404


def test_refusals_name_the_problem(studio) -> None:
    app, http, token = studio
    bad = _deploy(http, token, "bad_name!")
    assert bad.status_code == 400 and "endpoint name 'bad_name!' is invalid" in _alert(bad.text)
    assert _deploy(http, token, "churn-d").status_code == 303
    again = _deploy(http, token, "churn-d", SECOND)
    assert again.status_code == 400 and "exists already" in _alert(again.text)
    pct = _deploy(http, token, "churn-e", capture=150)
    assert pct.status_code == 400 and "between 0 and 100" in _alert(pct.text)
    invalid = http.get("/studio/endpoints/bad_name!")
    assert invalid.status_code == 400 and "is invalid" in _alert(invalid.text)
    assert http.get("/api/v1/endpoints/nope").status_code == 404
    gone = http.post("/api/v1/endpoints/nope/invocations", content="1,2,3,4",
                     headers={"X-CSRF-Token": token, "Content-Type": "text/csv"})
    assert gone.status_code == 404 and "nope" in gone.json()["message"]


def test_state_changes_need_the_csrf_token_and_our_origin(studio) -> None:
    app, http, token = studio
    assert _deploy(http, "forged", "churn-f").status_code == 403
    assert http.post("/api/v1/endpoints", json={"endpoint": "churn-f", "job": JOB,
                                                "candidate": FIRST}).status_code == 403
    assert http.delete("/api/v1/endpoints/churn-f").status_code == 403
    assert http.post("/studio/endpoints/churn-f/try", data={"row": "1"}).status_code == 403
    foreign = http.post("/api/v1/endpoints", json={"endpoint": "churn-f", "job": JOB,
                                                   "candidate": FIRST},
                        headers={"X-CSRF-Token": token, "Origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert app.state.studio_ctx.store.list_endpoints() == []
    made = http.post("/api/v1/endpoints", json={"endpoint": "churn-f", "job": JOB,
                                                "candidate": FIRST},
                     headers={"X-CSRF-Token": token})
    assert made.status_code == 201 and made.json()["status"] in ("InService", "Creating")
    assert http.delete("/api/v1/endpoints/churn-f",
                       headers={"X-CSRF-Token": token}).status_code == 204


def test_batch_transform_refusals(studio) -> None:
    app, http, token = studio
    page = http.get("/studio/transforms")
    assert page.status_code == 200 and 'name="source"' in page.text
    outside = http.post("/studio/transforms", data={
        "csrf_token": token, "model": f"{JOB}/{FIRST}", "source": "/etc/hostname"})
    assert outside.status_code == 400 and "outside the allowed roots" in _alert(outside.text)
    upload = http.post("/studio/transforms", data={"csrf_token": token, "model": f"{JOB}/{FIRST}"},
                       files={"file": ("../x.csv", b"a,b\n1,2\n", "text/csv")})
    assert upload.status_code == 400 and "folder part" in _alert(upload.text)
    htmx = http.post("/studio/transforms", data={"csrf_token": token, "model": "", "source": "x"},
                     headers={"HX-Request": "true"})
    assert htmx.status_code == 200 and "<html" not in htmx.text and "choose the model" in htmx.text
    forged = http.post("/studio/transforms", data={"csrf_token": "x", "model": f"{JOB}/{FIRST}",
                                                   "source": "x"}, files={"file": ("", b"")})
    assert forged.status_code == 403
    assert app.state.studio_ctx.store.list_resources("transform-job") == []


@pytest.mark.slow
def test_batch_transform_runs_and_reports_progress(studio, workspace: Path) -> None:
    app, http, token = studio
    started = http.post("/studio/transforms", data={
        "csrf_token": token, "model": f"{JOB}/{FIRST}", "source": str(workspace / "new.csv"),
        "output": ""})
    assert started.status_code == 303
    name = re.search(r"started=([\w-]+)", started.headers["location"]).group(1)

    def done() -> bool:
        return http.get(f"/api/v1/transforms/{name}").json()["status"] != "InProgress"

    wait_until(done, 120, "the transform worker")
    view = http.get(f"/api/v1/transforms/{name}").json()
    assert view["status"] == "Completed", view["failure"]
    assert (view["files_total"], view["files_done"], view["rows_written"]) == (1, 1, 30)
    out = Path(view["output"]) / "new.csv.out"
    model = load(workspace / "jobs" / JOB / "candidates" / FIRST / "model")
    expected = model.predict(pd.read_csv(workspace / "new.csv"))
    assert [line.split(",")[0] for line in out.read_text().split()] == [str(v) for v in expected]
    rows = http.get("/studio/transforms?fragment=rows")
    assert rows.status_code == 286  # nothing runs: htmx stops polling
    assert f'id="t-{name}"' in rows.text and "30 rows written" in rows.text
    link = f"transforms/{name}/output/new.csv.out"
    assert link in rows.text
    downloaded = http.get(f"/studio/{link}")
    assert downloaded.status_code == 200 and downloaded.text == out.read_text()
    for sneaky in ("..%2F..%2Ftabpilot.db", "new.csv", "..%2Fnew.csv.out"):
        assert http.get(f"/studio/transforms/{name}/output/{sneaky}").status_code == 404


def test_window_reads_the_last_minutes_from_the_metrics() -> None:
    from tabpilot.serving.observe import Metrics

    metrics, now = Metrics(), [0.0]
    window = Window(metrics, minutes=5, every=5, clock=lambda: now[0])

    def answer(status: int, seconds: float) -> None:
        metrics.record({"route": "/endpoints/{name}/invocations", "method": "POST",
                        "model": "m", "operation": None, "status": status,
                        "duration_ms": seconds * 1000})

    for _ in range(8):
        answer(200, 0.003)
    answer(500, 0.2)
    first = window.of("m")  # no reading five minutes old yet: since the start
    assert (first.requests, first.errors, first.span_s) == (9, 1, None)
    now[0] = 400.0
    for _ in range(4):
        answer(200, 0.03)
    later = window.of("m")  # the first reading (t=0) is now old enough to subtract
    assert (later.requests, later.errors, later.span_s) == (4, 0, 400.0)
    assert 25 <= later.p50_ms <= 50 and later.error_rate == 0.0
    assert window.of("other").requests == 0


def test_quantile_interpolates_like_promql() -> None:
    buckets = {0.1: 10.0, 0.2: 20.0, float("inf"): 20.0}
    assert quantile(0.5, buckets) == pytest.approx(0.1)
    assert quantile(0.75, buckets) == pytest.approx(0.15)
    assert quantile(0.5, {0.1: 0.0, float("inf"): 0.0}) is None
    assert quantile(0.99, {0.1: 1.0, float("inf"): 2.0}) == 0.1  # beyond: the last bound


def test_empty_workspace_pages_say_what_to_do(tmp_path: Path) -> None:
    http = client(studio_app(tmp_path))
    endpoints = http.get("/studio/endpoints")
    assert endpoints.status_code == 200 and "Nothing is deployed" in endpoints.text
    assert "has a packaged model yet" in endpoints.text
    transforms = http.get("/studio/transforms")
    assert transforms.status_code == 200 and "has a packaged model yet" in transforms.text
    assert http.get("/api/v1/transforms").json() == {"transforms": []}


def test_an_endpoint_whose_model_will_not_load_says_why(studio, workspace: Path) -> None:
    app, http, token = studio
    broken = workspace / "broken" / "model"
    broken.mkdir(parents=True, exist_ok=True)
    (broken / "manifest.json").write_text("{}")  # as `tabpilot deploy` of a bad folder would
    app.state.studio_ctx.store.put_endpoint("churn-g", str(broken), job=None, candidate="x")
    app.state.registry.refresh()
    page = http.get("/studio/endpoints/churn-g")
    assert page.status_code == 200 and "Failed" in page.text
    assert "The latest model did not load" in page.text
    tried = http.post("/studio/endpoints/churn-g/try",
                      data={"csrf_token": token, "row": "1,2,3,4"}, headers={"HX-Request": "1"})
    assert "HTTP 404" in tried.text and "is not being served" in tried.text
    listed = http.get("/studio/endpoints?fragment=rows").text
    assert "churn-g" in listed and "Failed" in listed
