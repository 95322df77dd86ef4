"""Known-in-advance covariates: filled per column on each item's grid, read by the global
LightGBM model (ignored by the local ones, and the job says so), recorded in the model
directory, and required for the horizon by predict, `/invocations` and batch transform."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tabpilot.errors import ConfigError, DataError
from tabpilot.forecast.request import ForecastRequest

H = 7
LOOPBACK = "http://127.0.0.1"


def promo_table(n: int = 56, seed: int = 0) -> pd.DataFrame:
    """Two daily series driven by a random 0/1 promotion (no season to learn it from), with
    H future rows per item: the target empty, the promotion given."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(2):
        promo = (rng.random(n + H) < 0.3).astype(float)
        y = 20 + 5 * i + 15 * promo + rng.normal(0, 0.5, n + H)
        y[n:] = np.nan
        frames.append(pd.DataFrame({"id": f"s{i}", "ds": pd.date_range("2024-01-01",
                                                                       periods=n + H),
                                    "y": y, "promo": promo}))
    return pd.concat(frames, ignore_index=True)


def build(**kw) -> ForecastRequest:
    base = {"target": "y", "timestamp": "ds", "item_id": "id", "frequency": "1D", "horizon": H,
            "covariates": ["promo"]}
    return ForecastRequest.build(**{**base, **kw})


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    import tabpilot.forecast

    workspace = tmp_path_factory.mktemp("cov-ws")
    table = promo_table()
    result = tabpilot.forecast.fit(
        table, workspace, target="y", timestamp="ds", item_id="id", frequency="1D",
        horizon=H, time_limit=60, candidates=["SeasonalNaive", "NPTS", "LightGBM"],
        covariates=["promo"], name="covjob", execute_notebook=False, n_windows=2)
    return result, table, workspace


def test_the_leaderboard_and_notes_say_who_reads_the_covariates(job):
    result, _, _ = job
    board = result.leaderboard.set_index("candidate")
    assert board.loc["LightGBM", "covariates"] == "used"
    assert board.loc["SeasonalNaive", "covariates"] == "ignored"
    assert board.loc["NPTS", "covariates"] == "ignored"
    assert "covariates promo: used by LightGBM; ignored by SeasonalNaive, NPTS" in \
        " ".join(result.notes)
    assert "14 rows after their item's last target value set aside" in " ".join(result.notes)
    # the promotion is all there is to learn: the model that reads it wins by far
    assert board.loc["LightGBM", "AverageWeightedQuantileLoss"] < \
        0.6 * board.loc["SeasonalNaive", "AverageWeightedQuantileLoss"]
    explained = json.loads((result.folder / "candidates" / "LightGBM" /
                            "explanations.json").read_text())
    assert explained["Covariates"] == {"Names": ["promo"], "Used": True}


def test_the_model_directory_records_the_covariates_it_needs(job):
    result, _, _ = job
    meta = json.loads((result.model_dir / "metadata.json").read_text())
    assert meta["covariates"] == ["promo"]
    assert "LightGBM" in meta["covariates_used_by"]


def test_predict_reads_future_rows_in_the_history_or_a_separate_table(job):
    from tabpilot.forecast import load

    result, table, _ = job
    predictor = load(result.model_dir)
    together = predictor.predict(table)
    history, future = table[table["y"].notna()], table[table["y"].isna()].drop(columns="y")
    apart = predictor.predict(history, future)
    pd.testing.assert_frame_equal(together, apart)
    assert len(together) == 2 * H and together["ds"].min() == pd.Timestamp("2024-02-26")
    # the forecast follows the future promotion
    s0 = together[together["id"] == "s0"].set_index("ds")["mean"]
    promo = future[future["id"] == "s0"].set_index("ds")["promo"]
    assert s0[promo == 1].mean() > s0[promo == 0].mean() + 8


def test_a_forecast_without_the_future_covariates_is_one_line(job):
    from tabpilot.forecast import load

    result, table, _ = job
    predictor = load(result.model_dir)
    with pytest.raises(DataError) as caught:
        predictor.predict(table[table["y"].notna()])
    message = str(caught.value)
    assert "covariate 'promo' of item 's0' has no value at 2024-02-26" in message
    assert "\n" not in message and "futurefill" in message


def test_invocations_and_batch_transform_take_the_future_rows(job, cli, tmp_path):
    from tabpilot.serving.app import model_app

    result, table, workspace = job
    client = TestClient(model_app(result.model_dir), base_url=LOOPBACK)
    ok = client.post("/invocations", content=table.to_csv(index=False),
                     headers={"content-type": "text/csv"})
    assert ok.status_code == 200, ok.text
    assert len(pd.read_csv(pd.io.common.StringIO(ok.text))) == 2 * H
    rows = json.loads(table.to_json(orient="records", date_format="iso"))
    ok_json = client.post("/invocations", json={"instances": rows},
                          headers={"accept": "application/json"})
    assert ok_json.status_code == 200 and len(ok_json.json()["predictions"]) == 2 * H
    missing = client.post("/invocations", content=table[table["y"].notna()].to_csv(index=False),
                          headers={"content-type": "text/csv"})
    assert missing.status_code == 400
    assert "covariate 'promo'" in missing.json()["message"]
    assert "\n" not in missing.json()["message"]
    source = tmp_path / "in"
    source.mkdir()
    table.to_csv(source / "a.csv", index=False)
    proc = cli("transform", str(result.model_dir), str(source), "-o", str(tmp_path / "out"),
               workspace=workspace)
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(tmp_path / "out" / "a.csv.out")) == 2 * H


def test_each_covariate_is_filled_by_its_own_rules_on_its_items_grid():
    from tabpilot.forecast.series import prepare

    ds = pd.date_range("2024-01-01", periods=12)
    table = pd.DataFrame({"ds": ds, "y": np.arange(12.0),
                          "a": [np.nan, 1, np.nan, 3, 4, 5, 6, 7, 8, 9, np.nan, np.nan],
                          "b": [np.nan, 2, np.nan, 6, 1, 1, 1, 1, 1, 1, 1, np.nan]})
    request = build(item_id=None, horizon=2, covariates=["a", "b"], covariate_filling={
        "a": {"frontfill": "value", "value": -1, "middlefill": "median", "backfill": "max"},
        "b": {"middlefill": "none", "frontfill": "min"}})
    frame = prepare(table, request).frame
    assert frame["a"].tolist() == [-1, 1, 5.5, 3, 4, 5, 6, 7, 8, 9, 9, 9]
    b = frame["b"].to_numpy()
    assert b[0] == 1 and np.isnan(b[2]) and b[-1] == 0  # min; none stays missing; zero


def test_covariates_are_aggregated_into_periods_by_their_own_method():
    from tabpilot.forecast.series import prepare

    ds = pd.date_range("2024-01-01", periods=20 * 24, freq="6h")
    table = pd.DataFrame({"ds": ds, "y": 1.0, "price": np.tile([1.0, 2.0, 3.0, 6.0], 120),
                          "units": 1.0})
    request = build(item_id=None, aggregation="sum", covariates=["price", "units"],
                    covariate_aggregation={"units": "sum"})
    frame = prepare(table, request).frame
    assert frame["y"].eq(4).all() and frame["price"].eq(3).all() and frame["units"].eq(4).all()


def test_futurefill_fills_the_horizon_from_the_items_history():
    from tabpilot.forecast.covariates import with_future
    from tabpilot.forecast.series import prepare

    table = promo_table()
    history = table[table["y"].notna()]
    request = build(covariate_filling={"promo": {"futurefill": "mean"}})
    series = prepare(history, request, training=False)
    known = with_future(series.frame, series.future, request, series.freq)
    ahead = known["s1"]["promo"].iloc[-H:]
    assert ahead.nunique() == 1
    assert ahead.iloc[0] == pytest.approx(history[history["id"] == "s1"]["promo"].mean())


@pytest.mark.parametrize("settings,words", [
    ({"covariates": ["y"]}, "covariate 'y' is the target column"),
    ({"covariates": ["id"]}, "covariate 'id' is the item id column"),
    ({"covariate_filling": {"price": {"futurefill": "zero"}}},
     "filling is set for 'price', which is not the target nor a covariate (promo)"),
    ({"covariate_filling": {"promo": {"futurefill": "value"}}},
     "futurefill is 'value' but no fill value is given"),
    ({"filling": {"backfill": "value"}}, "backfill is 'value' but no fill value"),
    ({"covariate_filling": {"promo": {"futurefill": "later"}}},
     "covariate_filling.promo.futurefill"),
])
def test_bad_covariate_settings_are_one_config_error(settings, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        build(**settings)


@pytest.mark.parametrize("args,words", [
    (["--covariate-fill", "promo=zero"], "is not COLUMN:KEY=METHOD"),
    (["--covariate-fill", "promo:sidefill=zero"], "unknown key 'sidefill'"),
    (["--futurefill", "mean", "--covariates", ""], "need --covariates"),
    (["--covariates", "nope"], "covariate column 'nope' is not in the table"),
])
def test_cli_bad_covariate_options_are_one_line_and_exit_2(cli, tmp_path, args, words):
    path = tmp_path / "t.csv"
    promo_table().to_csv(path, index=False)
    base = ["--target", "y", "--timestamp", "ds", "--item-id", "id", "--horizon", "7",
            "--frequency", "1D"]
    if "--covariates" not in args:
        base += ["--covariates", "promo"]
    proc = cli("forecast", str(path), *base, *args, workspace=tmp_path / "ws")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and words in lines[0], proc.stderr


def test_the_facade_takes_covariates_and_their_filling():
    from tabpilot.api.forecast_jobs import forecast_request

    config = {"ForecastFrequency": "1D", "ForecastHorizon": 7,
              "TimeSeriesConfig": {"TargetAttributeName": "y", "TimestampAttributeName": "ds",
                                   "ItemIdentifierAttributeName": "id"},
              "Transformations": {"Filling": {"promo": {"futurefill": "value",
                                                        "futurefill_value": "0",
                                                        "middlefill": "median"}},
                                  "Aggregation": {"promo": "max", "y": "sum"}}}
    r = forecast_request({"AutoMLJobName": "cv", "AutoMLProblemTypeConfig": {
        "TimeSeriesForecastingJobConfig": config}})
    assert r.covariates == ["promo"] and r.aggregation == "sum"
    rule = r.covariate_fill("promo")
    assert (rule.futurefill, rule.value, rule.middlefill) == ("value", 0.0, "median")
    assert r.covariate_aggregation == {"promo": "max"}


def test_the_facade_reads_covariates_from_the_feature_specification(tmp_path):
    from tabpilot.api.context import ApiContext
    from tabpilot.api.forecast_jobs import forecast_request
    from tabpilot.api.locations import Locations
    from tabpilot.api.shapes import ApiError
    from tabpilot.store import Store

    ctx = ApiContext(Store.for_workspace(tmp_path), tmp_path, Locations(tmp_path))
    spec = tmp_path / "features.json"

    def request(features: dict, **config) -> ForecastRequest:
        spec.write_text(json.dumps(features))
        body = {"ForecastFrequency": "1D", "ForecastHorizon": 7,
                "FeatureSpecificationS3Uri": str(spec),
                "TimeSeriesConfig": {"TargetAttributeName": "y", "TimestampAttributeName": "ds",
                                     "ItemIdentifierAttributeName": "id"}, **config}
        return forecast_request({"AutoMLJobName": "cv", "AutoMLProblemTypeConfig": {
            "TimeSeriesForecastingJobConfig": body}}, ctx)

    r = request({"FeatureAttributeNames": ["promo", "price"]},
                Transformations={"Filling": {"price": {"futurefill": "mean"}}})
    assert r.covariates == ["promo", "price"]
    assert r.covariate_fill("price").futurefill == "mean"
    assert r.covariate_fill("promo").futurefill is None
    with pytest.raises(ApiError, match="names 'other', which is neither the target nor a "
                                       "feature of FeatureSpecificationS3Uri"):
        request({"FeatureAttributeNames": ["promo"]},
                Transformations={"Filling": {"other": {"futurefill": "zero"}}})


def test_describe_shows_the_covariates_filling_as_autopilot_writes_it():
    from tabpilot.forecast.views import job_config

    request = build(covariate_filling={"promo": {"futurefill": "value", "value": 0}},
                    covariate_aggregation={"promo": "max"}, aggregation="sum")
    config = job_config(request.model_dump(mode="json"))["Transformations"]
    assert config["Filling"]["promo"]["futurefill"] == "value"
    assert config["Filling"]["promo"]["futurefill_value"] == "0"
    assert config["Aggregation"] == {"y": "sum", "promo": "max"}
