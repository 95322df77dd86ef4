"""The input check at every entry point: Python `Model.predict`, `/invocations`, batch
transform (the CLI's are in test_predict_cli.py).

A value that does not parse for its column's kind is an error naming the row, the column
and the value, unless the caller opts into reading it as missing, which is then counted;
categories the model never saw are allowed and counted; missing columns are all listed,
or the first ten and how many more.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from predictlib import WIDE, build, wide_table
from servinglib import churn_table

from tabpilot.artifacts import load
from tabpilot.artifacts.validate import BadValueError, MissingColumnsError
from tabpilot.errors import ConfigError, TabpilotError
from tabpilot.serving.app import Live, ServerSettings, invoke, model_app
from tabpilot.serving.batch import TransformSettings, transform
from tabpilot.serving.capture import CaptureWriter

ROWS = churn_table(6, seed=5).drop(columns="label")  # customer_id, tenure, plan, charges


def _with(**cells: tuple[int, object]) -> pd.DataFrame:
    """ROWS as text-like objects, with {column: (row position, value)} set."""
    df = ROWS.astype(object).copy()
    for col, (i, value) in cells.items():
        df.loc[i, col] = value
    return df


@pytest.fixture(scope="module")
def model(models):
    return load(models["binary"])


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("wide") / "wide" / "model", wide_table(), "label")


# -- Python -------------------------------------------------------------------------------
def test_python_text_in_a_numeric_column_names_row_column_and_value(model) -> None:
    with pytest.raises(BadValueError) as caught:
        model.predict(_with(tenure=(1, "fifty")))
    message = str(caught.value)
    assert isinstance(caught.value, TabpilotError)
    for words in ("row 2", "'tenure'", "'fifty'", "numeric", 'on_bad_value="missing"'):
        assert words in message, (words, message)
    with pytest.raises(BadValueError, match=r"row 4, column 'charges'.*2 such values"):
        model.predict_proba(_with(charges=(3, "abc"), tenure=(5, "n/a?")))


def test_python_numbers_as_text_blanks_and_na_markers_are_read_as_numbers_or_missing(
        model) -> None:
    text = _with(tenure=(0, " 12 "), charges=(1, "1e3"))
    text.loc[2, "tenure"], text.loc[3, "charges"], text.loc[4, "tenure"] = "12.0", "", "NA"
    text.loc[5, "charges"] = None
    typed = ROWS.copy()
    typed.loc[[0, 2], "tenure"] = 12.0
    typed.loc[1, "charges"] = 1000.0
    typed.loc[[3, 5], "charges"], typed.loc[4, "tenure"] = np.nan, np.nan
    assert np.allclose(model.predict_proba(text), model.predict_proba(typed))
    assert model.check(text)[1].bad_total == 0


def test_python_opt_in_reads_bad_values_as_missing_and_counts_them(model) -> None:
    bad = _with(tenure=(1, "fifty"), charges=(2, "abc"))
    blank = ROWS.copy()
    blank.loc[1, "tenure"], blank.loc[2, "charges"] = np.nan, np.nan
    assert list(model.predict(bad, on_bad_value="missing")) == list(model.predict(blank))
    _, found = model.check(bad, "missing")
    assert found.bad_values == {"tenure": 1, "charges": 1}
    with pytest.raises(ConfigError, match="on_bad_value"):
        model.predict(ROWS, on_bad_value="ignore")


def test_python_unseen_category_is_allowed_and_counted(model) -> None:
    rows = _with(plan=(0, "platinum"))
    rows.loc[1, "plan"], rows.loc[2, "plan"] = "gold", None  # missing is not unseen
    assert len(model.predict(rows)) == len(rows)
    assert model.check(rows)[1].unseen_categories == {"plan": 2}
    many = pd.concat([rows] * 20, ignore_index=True)  # past the small-batch path
    assert model.check(many)[1].unseen_categories == {"plan": 40}


def test_python_missing_columns_are_all_listed_or_the_first_ten_and_a_count(model, wide
                                                                              ) -> None:
    with pytest.raises(MissingColumnsError, match="2 required columns: 'tenure', 'plan'"):
        model.predict(ROWS.drop(columns=["tenure", "plan"]))
    rows = wide_table(5, seed=1).drop(columns="label")
    with pytest.raises(MissingColumnsError) as caught:
        load(wide).predict(rows[["f00", "f01"]])
    message = str(caught.value)
    assert f"{WIDE - 2} required columns" in message
    assert "'f02'" in message and "'f11'" in message and "'f12'" not in message
    assert f"and {WIDE - 2 - 10} more" in message


# -- HTTP ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(models):
    from servinglib import ThreadServer

    with ThreadServer(model_app(models["binary"])) as running:
        yield running


def _post(server, body: str, content_type: str = "text/csv", **headers: str) -> httpx.Response:
    return httpx.post(f"{server.url}/invocations", content=body,
                      headers={"Content-Type": content_type, **headers})


def test_http_text_in_a_numeric_column_is_a_400_in_the_aws_shape(server) -> None:
    r = _post(server, _with(tenure=(2, "fifty")).to_csv(index=False, header=False))
    assert r.status_code == 400
    assert r.headers["x-amzn-ErrorType"] == "ValidationError"
    body = r.json()
    assert body["message"] == body["error"]
    for words in ("row 3", "'tenure'", "'fifty'", "X-Tabpilot-On-Bad-Value: missing"):
        assert words in body["message"], (words, body)


def test_http_opt_in_header_reads_bad_values_as_missing_and_counts_them(server, model
                                                                          ) -> None:
    bad = _with(tenure=(2, "fifty"), charges=(4, "abc"))
    r = _post(server, bad.to_csv(index=False, header=False),
              **{"X-Tabpilot-On-Bad-Value": "missing"})
    assert r.status_code == 200, r.text
    assert r.headers["X-Tabpilot-Bad-Values"] == "2"
    assert r.headers["X-Tabpilot-Unseen-Categories"] == "0"
    blank = ROWS.copy()
    blank.loc[2, "tenure"], blank.loc[4, "charges"] = np.nan, np.nan
    assert [line.split(",")[0] for line in r.text.split()] == list(model.predict(blank))
    refused = _post(server, bad.to_csv(index=False, header=False),
                    **{"X-Tabpilot-On-Bad-Value": "skip"})
    assert refused.status_code == 400 and "on_bad_value" in refused.json()["message"]


def test_http_unseen_category_is_answered_and_counted(server) -> None:
    rows = _with(plan=(0, "platinum")).to_dict(orient="records")
    r = httpx.post(f"{server.url}/invocations", json={"instances": rows})
    assert r.status_code == 200, r.text
    assert r.headers["X-Tabpilot-Unseen-Categories"] == "1"
    assert r.headers["X-Tabpilot-Bad-Values"] == "0"


def test_http_missing_columns_are_listed_with_the_count_of_the_rest(wide, serve_app) -> None:
    server = serve_app(model_app(wide))
    rows = wide_table(3, seed=2)[["f00", "f14"]].to_dict(orient="records")
    r = httpx.post(f"{server.url}/invocations", json={"instances": rows})
    assert r.status_code == 400
    message = r.json()["message"]
    assert f"{WIDE - 2} required columns: 'f01', 'f02'" in message
    assert f"and {WIDE - 2 - 10} more" in message
    one = _post(server, "f00,f02\n1,2\n", "text/csv;header=present")
    assert one.status_code == 400 and "'f01'" in one.json()["message"]


def test_server_wide_policy_and_the_capture_record_count_bad_values(model, tmp_path) -> None:
    live = Live(model, 1, capture=CaptureWriter(tmp_path, "ep", 100),
                on_bad_value=ServerSettings(on_bad_value="missing").on_bad_value)
    body = _with(tenure=(0, "fifty"), plan=(1, "gold")).to_csv(index=False, header=False)
    response = invoke(live, body.encode(), "text/csv", "text/csv", None)
    assert response.status_code == 200
    assert response.headers["X-Tabpilot-Bad-Values"] == "1"
    (log,) = list(tmp_path.rglob("*.jsonl"))
    record = json.loads(log.read_text())
    assert record["inputCheck"] == {"rows": 6, "badValues": {"tenure": 1},
                                    "unseenCategories": {"plan": 1}}
    strict = invoke(live, body.encode(), "text/csv", "text/csv", None, "error")
    assert strict.status_code == 400  # the request's header wins over the server's policy


# -- batch transform ----------------------------------------------------------------------
def test_batch_a_bad_value_fails_the_file_naming_it_row_and_column(model, tmp_path) -> None:
    table = churn_table(40, seed=6).drop(columns="label").astype(object)
    table.loc[27, "tenure"] = "fifty"  # in the third chunk of 10
    src = tmp_path / "in.csv"
    table.to_csv(src, index=False)
    out = tmp_path / "out"
    with pytest.raises(BadValueError) as caught:
        transform(model, src, out, TransformSettings(chunk_rows=10))
    message = str(caught.value)
    for words in (str(src), "row 28", "'tenure'", "'fifty'"):
        assert words in message, (words, message)
    assert not list(out.iterdir())  # neither an output nor a partial file is left

    found: dict = {}
    table.loc[3, "plan"] = "gold"
    table.to_csv(src, index=False)
    done = transform(model, src, out, TransformSettings(chunk_rows=10, on_bad_value="missing"),
                     found)
    assert done == {"in.csv": 40}
    assert found["in.csv"].bad_values == {"tenure": 1}
    assert found["in.csv"].unseen_categories == {"plan": 1}


def test_batch_missing_columns_in_a_header_are_listed(wide, tmp_path) -> None:
    src = tmp_path / "few.csv"
    wide_table(20, seed=3)[["f00", "f01", "f02"]].to_csv(src, index=False)
    with pytest.raises(MissingColumnsError, match=rf"{WIDE - 3} required columns: 'f03'.*"
                                                  rf"and {WIDE - 3 - 10} more"):
        transform(load(wide), src, tmp_path / "out", TransformSettings())
    parquet = tmp_path / "few.parquet"
    wide_table(20, seed=3)[["f00"]].to_parquet(parquet)
    with pytest.raises(MissingColumnsError, match="few.parquet"):
        transform(load(wide), parquet, tmp_path / "out", TransformSettings())
