"""The Studio's experiments pages and their /api/v1 routes, over runs made through the
server's own SageMaker API and metrics service routes: the list, an experiment's runs with
their parameters and last metrics, and a chosen metric's chart with its table."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from studiolib import client, studio_app

AMZ = {"Content-Type": "application/x-amz-json-1.1"}


def _call(http, operation: str, **params) -> dict:
    answer = http.post("/", headers={**AMZ, "X-Amz-Target": f"SageMaker.{operation}"},
                       content=json.dumps(params))
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory):
    workspace: Path = tmp_path_factory.mktemp("experiments-studio")
    http = client(studio_app(workspace))
    _call(http, "CreateExperiment", ExperimentName="churn-runs", Description="three depths")
    _call(http, "CreateTrial", TrialName="churn-group", ExperimentName="churn-runs")
    now = time.time()
    for depth in (2, 4, 6):
        name = f"churn-runs-depth-{depth}"
        _call(http, "CreateTrialComponent", TrialComponentName=name,
              Status={"PrimaryStatus": "Completed"},
              Parameters={"max_depth": {"NumberValue": depth},
                          "booster": {"StringValue": "gbtree"}})
        _call(http, "AssociateTrialComponent", TrialComponentName=name, TrialName="churn-group")
        data = [{"MetricName": "loss", "Timestamp": now + s, "Step": s,
                 "Value": round(1 / (depth + s), 4)} for s in range(3)]
        data.append({"MetricName": "auc", "Timestamp": now, "Value": 0.7 + depth / 100})
        answer = http.put("/BatchPutMetrics", json={"TrialComponentName": name,
                                                    "MetricData": data})
        assert answer.status_code == 200, answer.text
    _call(http, "CreateExperiment", ExperimentName="empty-exp")
    return http


def test_the_list_links_each_experiment(http) -> None:
    page = http.get("/studio/experiments")
    assert page.status_code == 200
    assert 'aria-current="page">Experiments</a>' in page.text
    assert 'href="experiments/churn-runs"' in page.text
    row = re.search(r"churn-runs</a>.*?</tr>", page.text, re.S).group(0)
    assert "three depths" in row and re.findall(r'class="num">(\d+)<', row) == ["1", "3"]


def test_an_experiment_shows_runs_parameters_and_last_metrics(http) -> None:
    page = http.get("/studio/experiments/churn-runs")
    assert page.status_code == 200
    table = re.search(r'<table id="runs-table">.*?</table>', page.text, re.S).group(0)
    assert "<th scope=\"col\">max_depth</th>" in table and "loss (last)" in table
    depth4 = re.search(r"churn-runs-depth-4</th>.*?</tr>", table, re.S).group(0)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", depth4)
    assert cells == ["Completed", "churn-group", "gbtree", "4", "0.74", "0.1667"]


def test_the_chart_has_a_name_data_and_a_table(http) -> None:
    page = http.get("/studio/experiments/churn-runs", params={"metric": "loss"})
    block = re.search(r'<script type="application/json" id="experiment-chart">(.*?)</script>',
                      page.text, re.S).group(1)
    plot = json.loads(block)
    assert plot["x"] == [0, 1, 2] and len(plot["series"]) == 3
    assert sorted(s["y"][0] for s in plot["series"]) == [0.1667, 0.25, 0.5]
    assert re.search(r'role="img" aria-label="loss by step for 3 runs', page.text)
    table = re.search(r'<table id="chart-table">.*?</table>', page.text, re.S).group(0)
    assert table.count("<tr>") == 4  # the header and three steps
    assert 'src="../static/experiments.js"' in page.text
    auc = json.loads(re.search(r'id="experiment-chart">(.*?)</script>', http.get(
        "/studio/experiments/churn-runs", params={"metric": "auc"}).text, re.S).group(1))
    assert auc["metric"] == "auc" and auc["x"] == [0]


def test_the_rest_routes(http) -> None:
    listed = http.get("/api/v1/experiments").json()["experiments"]
    assert {e["name"]: e["runs"] for e in listed} == {"churn-runs": 3, "empty-exp": 0}
    detail = http.get("/api/v1/experiments/churn-runs").json()
    assert detail["parameter_names"] == ["booster", "max_depth"]
    assert detail["metric_names"] == ["auc", "loss"]
    run = next(r for r in detail["runs"] if r["name"] == "churn-runs-depth-2")
    assert run["metrics"]["loss"]["Count"] == 3 and run["metrics"]["loss"]["Min"] == 0.25
    chart = http.get("/api/v1/experiments/churn-runs/chart", params={"metric": "loss"}).json()
    assert len(chart["series"]) == 3
    assert "/api/v1/experiments/{name}/chart" in http.get("/api/v1/openapi.json").json()["paths"]


@pytest.mark.parametrize("path, status, words", [
    ("/studio/experiments/never-made", 404, "never-made"),
    ("/studio/experiments/bad_name", 400, "invalid"),
    ("/api/v1/experiments/never-made", 404, "never-made"),
])
def test_missing_and_bad_names(http, path, status, words) -> None:
    answer = http.get(path)
    assert answer.status_code == status and words in answer.text


def test_an_experiment_without_runs_says_so(http) -> None:
    page = http.get("/studio/experiments/empty-exp")
    assert page.status_code == 200 and "No runs in this experiment yet" in page.text
