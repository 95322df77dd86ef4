"""The single-model container contract over real HTTP: GET /ping, POST /invocations."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from servinglib import churn_table

from tabpilot.artifacts import load
from tabpilot.serving.app import model_app

ROWS = churn_table(5, seed=3).drop(columns="label")


@pytest.fixture
def server(models: dict[str, Path], serve_app):
    return serve_app(model_app(models["binary"]))


def _csv(df, header: bool = False) -> str:
    return df.to_csv(index=False, header=header)


def _expected(models: dict[str, Path]) -> list[str]:
    return list(load(models["binary"]).predict(ROWS))


def test_ping(server) -> None:
    assert httpx.get(f"{server.url}/ping").status_code == 200


def test_csv_without_header_in_training_order(server, models) -> None:
    r = httpx.post(f"{server.url}/invocations", content=_csv(ROWS),
                   headers={"Content-Type": "text/csv", "Accept": "text/csv"})
    assert r.status_code == 200, r.text
    lines = r.text.strip().splitlines()
    assert [line.split(",")[0] for line in lines] == _expected(models)
    assert all(0.0 <= float(line.split(",")[1]) <= 1.0 for line in lines)


def test_csv_with_header_any_column_order_and_extra_columns(server, models) -> None:
    shuffled = ROWS[["plan", "charges", "tenure", "customer_id"]].assign(extra=1)
    r = httpx.post(f"{server.url}/invocations", content=_csv(shuffled, header=True),
                   headers={"Content-Type": "text/csv;header=present"})
    assert r.status_code == 200, r.text
    assert [line.split(",")[0] for line in r.text.strip().splitlines()] == _expected(models)


@pytest.mark.parametrize("shape", ["objects", "arrays", "features"])
def test_json_instances(server, models, shape: str) -> None:
    if shape == "objects":
        instances = ROWS.to_dict(orient="records")
    elif shape == "arrays":
        instances = ROWS.to_numpy().tolist()
    else:
        instances = [{"features": row} for row in ROWS.to_numpy().tolist()]
    r = httpx.post(f"{server.url}/invocations", json={"instances": instances},
                   headers={"Accept": "application/json"})
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    assert [p["predicted_label"] for p in predictions] == _expected(models)
    assert set(predictions[0]) == {"predicted_label", "probability"}


def test_jsonlines_in_and_out_with_all_keys(server, models) -> None:
    body = "\n".join(json.dumps(r) for r in ROWS.to_dict(orient="records"))
    r = httpx.post(f"{server.url}/invocations", content=body,
                   headers={"Content-Type": "application/jsonlines",
                            "Accept": "application/jsonlines",
                            "X-Tabpilot-Output-Keys": "predicted_label,probability,"
                                                      "probabilities,labels"})
    assert r.status_code == 200, r.text
    rows = [json.loads(line) for line in r.text.strip().splitlines()]
    assert [row["predicted_label"] for row in rows] == _expected(models)
    for row in rows:
        assert row["labels"] == ["no", "yes"]
        assert abs(sum(row["probabilities"]) - 1) < 1e-9
        assert row["probability"] == max(row["probabilities"]) or row["predicted_label"] == "yes"


def test_output_keys_chosen_per_model(models, serve_app) -> None:
    server = serve_app(model_app(models["binary"], output_keys="predicted_label,labels"))
    r = httpx.post(f"{server.url}/invocations", json={"instances": ROWS.head(1).to_dict("records")},
                   headers={"Accept": "application/json"})
    assert set(r.json()["predictions"][0]) == {"predicted_label", "labels"}


def test_regression_model_answers_numbers(models, serve_app) -> None:
    server = serve_app(model_app(models["regression"]))
    r = httpx.post(f"{server.url}/invocations", content=_csv(ROWS),
                   headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    values = [float(v) for v in r.text.split()]
    assert len(values) == len(ROWS)


@pytest.mark.parametrize("body, content_type, status, words", [
    ("a,b\n", "text/csv", 400, "row 1 has 2 values"),
    ("", "text/csv", 400, "empty"),
    ("{not json", "application/json", 400, "not valid JSON"),
    ('{"instances": [{"tenure": 3}]}', "application/json", 400, "'plan'"),
    ('{"instances": [1, 2]}', "application/json", 400, "row 1"),
    ("x", "application/xml", 415, "unsupported content type"),
    ("customer_id,tenure\nC1,3\n", "text/csv;header=present", 400, "'plan'"),
])
def test_bad_requests_get_a_4xx_naming_the_problem_and_the_server_lives_on(
        server, body: str, content_type: str, status: int, words: str) -> None:
    r = httpx.post(f"{server.url}/invocations", content=body,
                   headers={"Content-Type": content_type})
    assert r.status_code == status
    assert words in r.json()["error"]
    assert httpx.get(f"{server.url}/ping").status_code == 200


def test_unsupported_accept_is_406(server) -> None:
    r = httpx.post(f"{server.url}/invocations", content=_csv(ROWS),
                   headers={"Content-Type": "text/csv", "Accept": "image/png"})
    assert r.status_code == 406


def test_token_is_checked_on_every_request(models, serve_app) -> None:
    """Every route but GET /ping (health checks carry no token, and it tells nothing)."""
    server = serve_app(model_app(models["binary"], token="s3cret"))
    assert httpx.get(f"{server.url}/ping").status_code == 200
    assert httpx.post(f"{server.url}/invocations", content=_csv(ROWS)).status_code == 401
    assert httpx.post(f"{server.url}/invocations", content=_csv(ROWS),
                      headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.post(f"{server.url}/ping").status_code in (401, 405)  # only GET is open
    ok = httpx.post(f"{server.url}/invocations", content=_csv(ROWS),
                    headers={"Authorization": "Bearer s3cret", "Content-Type": "text/csv"})
    assert ok.status_code == 200
