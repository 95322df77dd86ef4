"""A forecasting model through every serving face: /invocations (serve-model and the
endpoint server), batch transform, and the SageMaker facade's request mapping."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tabpilot.forecast.job import ENSEMBLE

LOOPBACK = "http://127.0.0.1"  # the guard answers loopback names only


@pytest.fixture(scope="module")
def client(finished_job):
    from tabpilot.serving.app import model_app

    result, _, _ = finished_job
    return TestClient(model_app(result.model_dir), base_url=LOOPBACK)


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def test_invocations_forecast_each_item_after_its_history_as_csv(client, finished_job):
    result, table, _ = finished_job
    history = table.groupby("id").head(60)  # each item's history ends on day 60
    answer = client.post("/invocations", content=_csv(history),
                         headers={"content-type": "text/csv", "accept": "text/csv"})
    assert answer.status_code == 200, answer.text
    frame = pd.read_csv(io.StringIO(answer.text), parse_dates=["ds"])
    assert list(frame.columns) == ["id", "ds", "mean", "p10", "p50", "p90"]
    assert frame.groupby("id").size().to_dict() == {"item0": 7, "item1": 7}
    assert frame["ds"].min() == pd.Timestamp("2024-03-01")  # the day after day 60
    from tabpilot.forecast.model import load

    expected = load(result.model_dir)[0].predict(history)
    assert frame["p90"].to_numpy() == pytest.approx(expected["p90"].to_numpy())
    assert answer.headers["x-amzn-sagemaker-inference-id"]


@pytest.mark.parametrize("kind", ["application/json", "application/jsonlines"])
def test_invocations_take_and_give_json(client, finished_job, kind):
    _, table, _ = finished_job
    one = table[table["id"] == "item1"].tail(30).assign(ds=lambda d: d["ds"].astype(str))
    rows = one.to_dict(orient="records")
    body = json.dumps({"instances": rows}) if kind == "application/json" else \
        "".join(json.dumps(r) + "\n" for r in rows)
    answer = client.post("/invocations", content=body,
                         headers={"content-type": kind, "accept": kind})
    assert answer.status_code == 200, answer.text
    records = answer.json()["predictions"] if kind == "application/json" else \
        [json.loads(line) for line in answer.text.splitlines()]
    assert len(records) == 7 and {r["id"] for r in records} == {"item1"}
    assert records[0]["ds"] == "2024-03-11T00:00:00"  # 70 days of history, then the 71st
    assert all(r["p10"] <= r["p50"] <= r["p90"] for r in records)


@pytest.mark.parametrize("change,words", [
    (lambda h: h.drop(columns="y"), "target column 'y' is not in the table"),
    (lambda h: h.assign(ds=h["ds"] + pd.Timedelta(hours=6) * (h.index % 2)),
     "does not fall on the 1D grid"),
    (lambda h: h.groupby("id").head(5), "has 5 points; a series needs at least 8"),
    (lambda h: h.assign(y="many"), "target column 'y' is not numeric"),
])
def test_bad_history_is_a_400_with_one_line(client, finished_job, change, words):
    _, table, _ = finished_job
    answer = client.post("/invocations", content=_csv(change(table.copy())),
                         headers={"content-type": "text/csv"})
    assert answer.status_code == 400
    message = answer.json()["message"]
    assert words in message and "\n" not in message


def test_a_csv_without_its_header_is_refused_naming_the_columns(client):
    answer = client.post("/invocations", content="item0,2024-01-01,3\n",
                         headers={"content-type": "text/csv"})
    assert answer.status_code == 400
    assert answer.json()["message"] == "CSV needs a header row naming the history's " \
                                       "columns: id,ds,y"


def test_a_deployed_forecasting_job_answers_on_the_endpoint_server(finished_job, tmp_path,
                                                                   cli):
    import shutil

    from tabpilot.serving.app import ServerSettings, server_app

    _, table, workspace = finished_job
    copy = tmp_path / "ws"
    shutil.copytree(workspace, copy)
    assert cli("deploy", "fcjob", "--endpoint", "demand", "--capture-percent", "100",
               workspace=copy).returncode == 0
    with TestClient(server_app(ServerSettings(workspace=copy)), base_url=LOOPBACK) as c:
        answer = c.post("/endpoints/demand/invocations", content=_csv(table),
                        headers={"content-type": "text/csv"})
    assert answer.status_code == 200, answer.text
    assert len(pd.read_csv(io.StringIO(answer.text))) == 14
    captured = [json.loads(line) for f in (copy / "capture" / "demand").rglob("*.jsonl")
                for line in f.read_text().splitlines()]
    assert len(captured) == 1  # data capture records a forecast like any prediction
    output = captured[0]["captureData"]["endpointOutput"]
    assert output["observedContentType"] == "text/csv" and "p90" in output["data"]


def test_transform_forecasts_each_file_and_skips_finished_ones(finished_job, cli, tmp_path):
    result, table, workspace = finished_job
    source = tmp_path / "in"
    source.mkdir()
    table[table["id"] == "item0"].to_csv(source / "a.csv", index=False)
    table.to_parquet(source / "b.parquet")
    proc = cli("transform", str(result.model_dir), str(source), "-o", str(tmp_path / "out"),
               workspace=workspace)
    assert proc.returncode == 0, proc.stderr
    a = pd.read_csv(tmp_path / "out" / "a.csv.out")
    b = pd.read_csv(tmp_path / "out" / "b.parquet.out")
    assert (len(a), len(b)) == (7, 14) and list(b.columns)[:3] == ["id", "ds", "mean"]
    assert a["p50"].to_numpy() == pytest.approx(b[b["id"] == "item0"]["p50"].to_numpy())
    again = cli("transform", str(result.model_dir), str(source), "-o", str(tmp_path / "out"),
                workspace=workspace)
    assert "a.csv: skipped (done before)" in again.stderr
    joined = cli("transform", str(result.model_dir), str(source), "-o", str(tmp_path / "o2"),
                 "--join-input", workspace=workspace)
    assert joined.returncode == 2 and "JoinSource=Input" in joined.stderr


# -- the facade's TimeSeriesForecastingJobConfig -> ForecastRequest -----------------------
def _v2(**config) -> dict:
    base = {"ForecastFrequency": "1D", "ForecastHorizon": 7,
            "TimeSeriesConfig": {"TargetAttributeName": "y", "TimestampAttributeName": "ds",
                                 "ItemIdentifierAttributeName": "id"}}
    return {"AutoMLJobName": "ts", "AutoMLProblemTypeConfig": {
        "TimeSeriesForecastingJobConfig": {**base, **config}}}


def test_the_facade_maps_the_config_onto_the_request():
    from tabpilot.api.forecast_jobs import forecast_request

    p = _v2(ForecastQuantiles=["p20", "p50", "p80"],
            CompletionCriteria={"MaxAutoMLJobRuntimeInSeconds": 120},
            Transformations={"Filling": {"y": {"middlefill": "value", "middlefill_value": "2",
                                               "backfill": "none"}},
                             "Aggregation": {"y": "sum"}},
            CandidateGenerationConfig={"AlgorithmsConfig": [{"AutoMLAlgorithms": ["ets",
                                                                                  "arima"]}]})
    p["AutoMLJobObjective"] = {"MetricName": "WAPE"}
    r = forecast_request(p)
    assert (r.name, r.target, r.timestamp, r.item_id) == ("ts", "y", "ds", "id")
    assert r.quantiles == [0.2, 0.5, 0.8] and r.time_limit == 120 and r.objective == "WAPE"
    assert (r.filling.middlefill, r.filling.value, r.filling.backfill) == ("value", 2.0, "none")
    assert r.aggregation == "sum" and r.candidates == ["AutoETS", "AutoARIMA"]
    assert forecast_request(_v2(HolidayConfig=[{"CountryCode": "DE"}])).holiday_country == "DE"


@pytest.mark.parametrize("config,words", [
    ({"HolidayConfig": [{"CountryCode": "XX"}]}, "holiday country 'XX' is not one"),
    ({"HolidayConfig": [{"CountryCode": "US"}, {"CountryCode": "GB"}]}, "takes one country"),
    ({"Transformations": {"Filling": {"price": {"sidefill": "zero"}}}},
     "Filling key 'sidefill' is not for 'price'; use frontfill, middlefill, backfill, "
     "futurefill"),
    ({"Transformations": {"Filling": {"y": {"futurefill": "zero"}}}},
     "Filling key 'futurefill' is not for the target"),
    ({"Transformations": {"Filling": {"price": {"futurefill": "mean", "middlefill": "value",
                                                "middlefill_value": "x"}}}},
     "a Filling <key>_value must be a number"),
    ({"Transformations": {"Filling": {"price": {"futurefill": "value"}}}},
     "futurefill is 'value' but no fill value is given"),
    ({"Transformations": {"Aggregation": {"price": "median"}}},
     "covariate_aggregation.price"),
    ({"CandidateGenerationConfig": {"AlgorithmsConfig": [{"AutoMLAlgorithms": ["deepar"]}]}},
     "algorithm deepar is not one tabpilot forecasts with; use any of arima, ets, npts"),
    ({"ForecastFrequency": "60min"}, "is not a ForecastFrequency"),
    ({"ForecastQuantiles": ["p10", "p20", "p30", "p40", "p50", "p60"]}, "takes 1 to 5"),
])
def test_the_facade_refuses_what_it_cannot_honour_in_one_line(config, words):
    from tabpilot.api.forecast_jobs import forecast_request
    from tabpilot.api.shapes import ApiError

    with pytest.raises(ApiError, match=words) as caught:
        forecast_request(_v2(**config))
    assert caught.value.code == "ValidationException" and "\n" not in caught.value.message


def test_the_model_directory_names_its_kind_to_the_loader(finished_job, tmp_path):
    import shutil

    from tabpilot.errors import ModelIntegrityError
    from tabpilot.serving.forecasting import ForecastModel, load

    result, _, _ = finished_job
    assert isinstance(load(result.model_dir), ForecastModel)
    copy = tmp_path / "m"
    shutil.copytree(result.model_dir, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    (copy / "metadata.json").write_text(json.dumps({**meta, "candidate": "x"}))
    with pytest.raises(ModelIntegrityError, match="does not match its sha256"):
        load(copy)  # the kind is read from a file the manifest covers: checked first
    assert result.model_dir.parent.name == ENSEMBLE
