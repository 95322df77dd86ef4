from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.data.schema import (
    ColumnKind,
    Schema,
    check_feature_specification,
    infer_schema,
    load_feature_specification,
)
from tabpilot.errors import ConfigError

N = 200
WORDS = ["alpha", "beta", "gamma", "delta", "the", "quick", "brown", "fox", "lazy", "dog"]


def _frame(n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    days = rng.integers(0, 1000, n)
    return pd.DataFrame({
        "id": np.arange(n),
        "customerID": [f"{i:04d}-{''.join(rng.choice(list('ABCDEFGH'), 5))}" for i in range(n)],
        "income": rng.normal(50.0, 10.0, n),
        "rooms": rng.integers(1, 6, n),
        "color": rng.choice(["red", "green", "blue"], n),
        "review": [" ".join(rng.choice(WORDS, 8)) for _ in range(n)],
        "signup": [(pd.Timestamp("2020-01-01") + pd.Timedelta(days=int(d))).strftime("%Y-%m-%d")
                   for d in days],
        "constant": 7,
        "flag": rng.random(n) > 0.5,
    })


@pytest.fixture(scope="module")
def schema() -> Schema:
    return infer_schema(_frame())


@pytest.mark.parametrize("column, kind", [
    ("income", ColumnKind.NUMERIC),
    ("rooms", ColumnKind.NUMERIC),
    ("color", ColumnKind.CATEGORICAL),
    ("flag", ColumnKind.CATEGORICAL),
    ("review", ColumnKind.TEXT),
    ("signup", ColumnKind.DATETIME),
    ("id", ColumnKind.ID),
    ("customerID", ColumnKind.ID),
    ("constant", ColumnKind.CONSTANT),
])
def test_inferred_kind(schema: Schema, column: str, kind: ColumnKind) -> None:
    assert schema.kinds[column] is kind


def test_features_exclude_ids_and_constants_and_keep_order(schema: Schema) -> None:
    assert schema.features == ["income", "rooms", "color", "review", "signup", "flag"]


def test_target_is_left_out() -> None:
    schema = infer_schema(_frame(), target="income")
    assert "income" not in schema.kinds
    assert "color" in schema.kinds


def test_datetime64_column_is_datetime() -> None:
    df = pd.DataFrame({"when": pd.date_range("2021-01-01", periods=60, freq="h"),
                       "x": np.arange(60) % 7})
    assert infer_schema(df).kinds["when"] is ColumnKind.DATETIME


def test_all_missing_column_is_constant() -> None:
    df = pd.DataFrame({"empty": [None] * 30, "x": np.arange(30) % 4})
    assert infer_schema(df).kinds["empty"] is ColumnKind.CONSTANT


def test_integer_sequence_with_another_name_is_id() -> None:
    df = pd.DataFrame({"row": np.arange(100, 300), "x": np.arange(200) % 5})
    assert infer_schema(df).kinds["row"] is ColumnKind.ID


def test_unique_random_integers_not_named_like_an_id_stay_numeric() -> None:
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"price": rng.choice(100_000, N, replace=False)})
    assert infer_schema(df).kinds["price"] is ColumnKind.NUMERIC


def test_numeric_strings_with_a_few_blanks_are_numeric() -> None:
    rng = np.random.default_rng(0)
    values = [f"{v:.2f}" for v in rng.normal(100, 20, N)]
    values[3] = " "
    values[50] = " "
    df = pd.DataFrame({"TotalCharges": values})
    assert infer_schema(df).kinds["TotalCharges"] is ColumnKind.NUMERIC


def test_numeric_strings_with_many_blanks_are_numeric() -> None:
    rng = np.random.default_rng(0)
    values = [f"{v:.2f}" for v in rng.normal(100, 20, N)]
    for i in range(0, N, 10):  # 10% blank cells
        values[i] = " "
    df = pd.DataFrame({"TotalCharges": values})
    assert infer_schema(df).kinds["TotalCharges"] is ColumnKind.NUMERIC


@pytest.mark.parametrize("name", ["idle_seconds", "amount_paid"])
def test_names_merely_containing_id_letters_are_not_ids(name: str) -> None:
    rng = np.random.default_rng(2)
    df = pd.DataFrame({name: rng.choice(100_000, N, replace=False)})
    assert infer_schema(df).kinds[name] is ColumnKind.NUMERIC


def test_feature_types_force_a_kind() -> None:
    schema = infer_schema(_frame(), feature_types={"rooms": "categorical"})
    assert schema.kinds["rooms"] is ColumnKind.CATEGORICAL
    assert schema.overridden == ["rooms"]


def test_feature_names_exclude_other_columns() -> None:
    schema = infer_schema(_frame(), feature_names=["income", "color"])
    assert schema.features == ["income", "color"]


def test_schema_dict_round_trip(schema: Schema) -> None:
    again = Schema.from_dict(json.loads(json.dumps(schema.to_dict())))
    assert again.kinds == schema.kinds


def _spec(tmp_path: Path, content) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_load_feature_specification(tmp_path: Path) -> None:
    path = _spec(tmp_path, {"FeatureAttributeNames": ["income", "rooms", "color"],
                            "FeatureDataTypes": {"rooms": "Categorical"}})
    names, types = load_feature_specification(path)
    assert names == ["income", "rooms", "color"]
    assert types == {"rooms": "categorical"}


def test_feature_specification_applied_to_a_table(tmp_path: Path) -> None:
    df = _frame()
    path = _spec(tmp_path, {"FeatureAttributeNames": ["income", "rooms", "color"],
                            "FeatureDataTypes": {"rooms": "categorical"}})
    names, types = load_feature_specification(path)
    check_feature_specification(df, names, types)
    schema = infer_schema(df, feature_types=types, feature_names=names)
    assert schema.features == ["income", "rooms", "color"]
    assert schema.kinds["rooms"] is ColumnKind.CATEGORICAL
    assert schema.kinds["review"] is ColumnKind.ID  # excluded by the user


def test_feature_specification_without_names(tmp_path: Path) -> None:
    names, types = load_feature_specification(_spec(tmp_path, {"FeatureDataTypes": {}}))
    assert names is None
    assert types == {}


def test_bad_json_raises_config_error(tmp_path: Path) -> None:
    path = _spec(tmp_path, '{"FeatureDataTypes": {"a": "numeric",}')
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_feature_specification(path)


def test_json_that_is_not_an_object_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="JSON object"):
        load_feature_specification(_spec(tmp_path, ["income"]))


def test_missing_specification_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_feature_specification(tmp_path / "absent.json")


def test_unknown_type_raises_config_error(tmp_path: Path) -> None:
    path = _spec(tmp_path, {"FeatureDataTypes": {"income": "float"}})
    with pytest.raises(ConfigError, match="'income'.*'float'"):
        load_feature_specification(path)


@pytest.mark.parametrize("spec", [
    {"FeatureDataTypes": {"incme": "numeric"}},
    {"FeatureAttributeNames": ["income", "incme"]},
])
def test_unknown_column_raises_config_error(spec: dict) -> None:
    names, types = spec.get("FeatureAttributeNames"), spec.get("FeatureDataTypes", {})
    with pytest.raises(ConfigError, match="incme"):
        check_feature_specification(_frame(), names, types)
