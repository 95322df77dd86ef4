"""Categorical known-in-advance covariates: inferred from text (or named, for numeric
codes), encoded as the levels the job saw, kept with the model so that a forecast encodes
its covariates the same way however they were written, split on as categories by the
global LightGBM model, never filled or aggregated by a number."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from tabpilot.errors import ConfigError, DataError
from tabpilot.forecast.request import ForecastRequest

H = 7
DATASETS = Path("/work/shared/datasets")
LOOPBACK = "http://127.0.0.1"
# a promotion's kind and what it adds to sales; the order of the names is not the order
# of the effects, so a model that reads the codes as numbers splits badly
EFFECT = {"none": 0.0, "flyer": 20.0, "banner": 6.0, "tv": 12.0}


def kind_table(n: int = 63, seed: int = 1) -> pd.DataFrame:
    """Two daily series driven by a random promotion kind (text) and nothing else, with H
    future rows per item: the target empty, the promotion given."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(2):
        kind = rng.choice(list(EFFECT), size=n + H)
        y = 30 + 4 * i + np.array([EFFECT[k] for k in kind]) + rng.normal(0, 0.5, n + H)
        y[n:] = np.nan
        frames.append(pd.DataFrame({"id": f"s{i}", "ds": pd.date_range("2024-01-01",
                                                                       periods=n + H),
                                    "y": y, "kind": kind}))
    return pd.concat(frames, ignore_index=True)


def build(**kw) -> ForecastRequest:
    base = {"target": "y", "timestamp": "ds", "item_id": "id", "frequency": "1D", "horizon": H,
            "covariates": ["kind"]}
    return ForecastRequest.build(**{**base, **kw})


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    import tabpilot.forecast

    workspace = tmp_path_factory.mktemp("cat-ws")
    table = kind_table()
    result = tabpilot.forecast.fit(
        table, workspace, target="y", timestamp="ds", item_id="id", frequency="1D",
        horizon=H, time_limit=60, candidates=["SeasonalNaive", "LightGBM"],
        covariates=["kind"], name="catjob", execute_notebook=False, n_windows=2)
    return result, table, workspace


def test_a_text_covariate_is_categorical_and_the_job_says_so(job):
    result, _, _ = job
    notes = " ".join(result.notes)
    assert ("covariate kind is categorical (its values are not numbers): 4 levels, 'banner', "
            "'flyer', 'none', 'tv'") in notes
    board = result.leaderboard.set_index("candidate")
    # the promotion's kind is all there is to learn
    assert board.loc["LightGBM", "AverageWeightedQuantileLoss"] < \
        0.5 * board.loc["SeasonalNaive", "AverageWeightedQuantileLoss"]


def test_the_model_keeps_the_levels_and_the_booster_splits_on_categories(job):
    from tabpilot.forecast.model import load

    result, _, _ = job
    predictor, meta = load(result.model_dir)
    assert predictor.request.covariate_categories == {"kind": ["banner", "flyer", "none", "tv"]}
    assert meta["request"]["covariate_categories"] == predictor.request.covariate_categories
    [gbm] = [m for m in predictor.members if m.name == "LightGBM"]
    dumped = gbm.model_.booster_.booster_.dump_model()
    kind = len(dumped["feature_names"]) - 1  # the covariates come last
    assert set(dumped["feature_infos"][dumped["feature_names"][kind]]["values"]) >= {0, 1, 2, 3}

    def splits(node: dict):
        if "split_feature" in node:
            yield node["split_feature"], node["decision_type"]
            yield from splits(node["left_child"])
            yield from splits(node["right_child"])

    on_kind = {how for tree in dumped["tree_info"]
               for feature, how in splits(tree["tree_structure"]) if feature == kind}
    assert on_kind == {"=="}  # sets of levels, never a threshold on the codes


def test_a_forecast_follows_the_future_levels_however_they_are_written(job):
    from tabpilot.forecast.model import load

    result, table, _ = job
    predictor, _ = load(result.model_dir)
    plain = predictor.predict(table)
    padded = predictor.predict(table.assign(kind=" " + table["kind"] + " "))
    pd.testing.assert_frame_equal(plain, padded)
    s0 = plain[plain["id"] == "s0"].set_index("ds")["mean"]
    future = table[table["y"].isna() & (table["id"] == "s0")].set_index("ds")["kind"]
    by_kind = s0.groupby(future).mean()
    assert by_kind.get("flyer", np.inf) > by_kind.get("none", -np.inf) + 10


def test_a_level_never_seen_counts_as_missing_not_as_an_error(job):
    from tabpilot.forecast.model import load

    result, table, _ = job
    predictor, _ = load(result.model_dir)
    future = table["y"].isna()
    odd = table.assign(kind=table["kind"].where(~future, "radio"))
    forecast = predictor.predict(odd)
    assert len(forecast) == 2 * H and np.isfinite(forecast["mean"]).all()


def test_invocations_take_the_levels_as_text_in_csv_and_json(job):
    from tabpilot.serving.app import model_app

    result, table, _ = job
    client = TestClient(model_app(result.model_dir), base_url=LOOPBACK)
    csv = client.post("/invocations", content=table.to_csv(index=False),
                      headers={"content-type": "text/csv"})
    rows = json.loads(table.to_json(orient="records", date_format="iso"))
    as_json = client.post("/invocations", json={"instances": rows},
                          headers={"accept": "application/json"})
    assert csv.status_code == 200 and as_json.status_code == 200, (csv.text, as_json.text)
    means = pd.read_csv(pd.io.common.StringIO(csv.text))["mean"].to_numpy()
    np.testing.assert_allclose(means, [p["mean"] for p in as_json.json()["predictions"]])


@pytest.mark.slow
@pytest.mark.skipif(not (DATASETS / "manifest.json").is_file(),
                    reason="the shared datasets are not on this machine")
def test_a_numeric_column_named_categorical_is_split_on_as_codes(tmp_path):
    """London's hourly bike hires with the weather code (1 clear ... 26 snow), a code
    rather than a quantity: named categorical, its levels are the codes it holds."""
    import tabpilot.forecast
    from tabpilot.forecast.model import load

    table = pd.read_csv(DATASETS / "london_bike_sharing.csv.gz").iloc[:24 * 28]
    result = tabpilot.forecast.fit(
        table, tmp_path, target="cnt", timestamp="timestamp", frequency="1H", horizon=24,
        time_limit=60, candidates=["SeasonalNaive", "LightGBM"], n_windows=1,
        covariates=["weather_code", "t1"], covariate_categories={"weather_code": []},
        execute_notebook=False, name="bikes")
    predictor, _ = load(result.model_dir)
    levels = predictor.request.covariate_categories["weather_code"]
    assert levels == sorted({str(int(v)) for v in table["weather_code"]})
    assert "covariate weather_code is categorical (as asked)" in " ".join(result.notes)
    assert "t1" not in predictor.request.covariate_categories


@pytest.mark.parametrize("settings,words", [
    ({"covariate_categories": {"kind": []}, "covariate_filling": {"kind": {"middlefill": "mean"}}},
     "covariate 'kind' is categorical: its middlefill cannot be 'mean'; use none"),
    ({"covariate_categories": {"kind": []}, "covariate_aggregation": {"kind": "avg"}},
     "covariate 'kind' is categorical: rows of one period cannot be combined by 'avg'; "
     "use first"),
    ({"covariate_categories": {"other": []}}, "categorical is set for 'other', which is not"),
])
def test_numeric_rules_for_a_categorical_covariate_are_one_config_error(settings, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        build(**settings)


def test_an_inferred_categorical_covariate_is_checked_the_same_way():
    from tabpilot.forecast.series import prepare

    request = build(covariate_filling={"kind": {"futurefill": "median"}})
    with pytest.raises(ConfigError, match="'kind' is categorical: its futurefill cannot be "
                                          "'median'"):
        prepare(kind_table(), request)


def test_a_numeric_column_with_a_few_bad_cells_is_refused_not_made_categorical():
    from tabpilot.forecast.series import prepare

    table = kind_table().assign(kind=lambda t: np.arange(len(t), dtype=float).astype(object))
    table.loc[5, "kind"] = "n/a"
    with pytest.raises(DataError, match="covariate column 'kind' is numeric but row 6 holds "
                                        "'n/a'"):
        prepare(table, build())


def test_a_model_trained_on_numbers_refuses_text_at_forecast_time():
    from tabpilot.forecast.series import prepare

    table = kind_table().assign(kind=1.0)
    with pytest.raises(DataError, match="covariate column 'kind' is numeric but row 1 holds "
                                        "'tv'"):
        prepare(table.assign(kind="tv"), build(), training=False)
    assert prepare(table, build()).categories == {}


def test_levels_are_aggregated_by_their_first_value_and_left_missing_when_absent():
    from tabpilot.forecast.series import prepare

    rows = pd.DataFrame({"id": "a", "ds": pd.to_datetime(
        ["2024-01-01 08:00", "2024-01-01 17:00", *[f"2024-01-{d:02d} 00:00" for d in range(3, 13)]]),
        "y": 1.0, "kind": ["tv", "none", *["flyer"] * 10]})
    series = prepare(rows, build(aggregation="sum", horizon=2))
    assert series.categories == {"kind": ["flyer", "none", "tv"]}
    kind = series.frame.set_index("ds")["kind"]
    assert kind[pd.Timestamp("2024-01-01")] == 2.0  # tv, the day's first
    assert np.isnan(kind[pd.Timestamp("2024-01-02")])  # no row: missing, never a guessed level


@pytest.mark.parametrize("value,text", [
    (True, "true"), ("TRUE", "true"), (np.bool_(False), "false"), (3, "3"), (3.0, "3"),
    ("3", "3"), (" 3.0 ", "3"), (2.5, "2.5"), ("flyer", "flyer"), (" flyer ", "flyer"),
    ("", None), (None, None), (np.nan, None), ("nan", "nan"),
])
def test_a_level_reads_the_same_however_it_was_parsed(value, text):
    from tabpilot.forecast.covariates import level

    assert level(value) == text


def test_the_facade_takes_categorical_types_from_the_feature_specification(tmp_path):
    from tabpilot.api.context import ApiContext
    from tabpilot.api.forecast_jobs import forecast_request
    from tabpilot.api.locations import Locations
    from tabpilot.api.shapes import ApiError
    from tabpilot.store import Store

    ctx = ApiContext(Store.for_workspace(tmp_path), tmp_path, Locations(tmp_path))
    spec = tmp_path / "features.json"

    def request(features: dict) -> ForecastRequest:
        spec.write_text(json.dumps(features))
        body = {"ForecastFrequency": "1D", "ForecastHorizon": 7,
                "FeatureSpecificationS3Uri": str(spec),
                "TimeSeriesConfig": {"TargetAttributeName": "y", "TimestampAttributeName": "ds",
                                     "ItemIdentifierAttributeName": "id"}}
        return forecast_request({"AutoMLJobName": "cv", "AutoMLProblemTypeConfig": {
            "TimeSeriesForecastingJobConfig": body}}, ctx)

    r = request({"FeatureAttributeNames": ["store", "price"],
                 "FeatureDataTypes": {"store": "categorical", "price": "numeric"}})
    assert r.covariates == ["store", "price"] and r.covariate_categories == {"store": []}
    with pytest.raises(ApiError, match="types 'note' as text; tabpilot's forecasting "
                                       "covariates are numeric or categorical"):
        request({"FeatureAttributeNames": ["note"], "FeatureDataTypes": {"note": "text"}})


def test_cli_categorical_names_columns_and_needs_covariates(cli, tmp_path):
    path = tmp_path / "t.csv"
    kind_table().to_csv(path, index=False)
    base = ["--target", "y", "--timestamp", "ds", "--item-id", "id", "--horizon", "7",
            "--frequency", "1D"]
    proc = cli("forecast", str(path), *base, "--categorical", "kind", workspace=tmp_path / "ws")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "need --covariates" in lines[0], \
        proc.stderr
