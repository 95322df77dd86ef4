from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.data.prepare import prepare
from tabpilot.data.schema import ColumnKind
from tabpilot.errors import ConfigError, DataError, TargetError
from tabpilot.tasks import ProblemType, infer_problem_type

N = 60


def _frame(target, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "x": rng.normal(size=n),
        "color": rng.choice(["red", "green", "blue"], n),
        "label": target,
    })


def _error(exc: type[Exception], df: pd.DataFrame, target: str = "label", **kwargs) -> str:
    with pytest.raises(exc) as info:
        prepare(df, target, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("values, expected", [
    (["yes", "no"] * 30, ProblemType.BINARY),
    ([0, 1] * 30, ProblemType.BINARY),
    ([True, False] * 30, ProblemType.BINARY),
    ([0.0, 1.0] * 30, ProblemType.BINARY),
    (["a", "b", "c"] * 20, ProblemType.MULTICLASS),
    ([1, 2, 3, 4, 5] * 12, ProblemType.MULTICLASS),
    ([1.0, 2.0, 3.0] * 20, ProblemType.MULTICLASS),
    (list(np.linspace(0, 1, 60)), ProblemType.REGRESSION),
    (list(range(60)), ProblemType.REGRESSION),
])
def test_infer_problem_type(values, expected: ProblemType) -> None:
    assert infer_problem_type(pd.Series(values, name="y")) is expected


def test_infer_problem_type_single_value() -> None:
    with pytest.raises(TargetError, match="single value"):
        infer_problem_type(pd.Series([3] * 10, name="y"))


def test_binary_with_string_labels() -> None:
    prepared = prepare(_frame(["yes", "no", "no"] * 20), "label")
    assert prepared.problem_type is ProblemType.BINARY
    assert prepared.classes == ["no", "yes"]
    assert prepared.y.tolist() == [1, 0, 0] * 20
    assert prepared.metric.name == "F1"
    assert list(prepared.X.columns) == ["x", "color"]
    assert prepared.dropped_rows == 0
    assert prepared.warnings == []


def test_binary_with_integer_labels() -> None:
    prepared = prepare(_frame([0, 1] * 30), "label")
    assert prepared.problem_type is ProblemType.BINARY
    assert prepared.classes == [0, 1]
    assert all(type(c) is int for c in prepared.classes)


def test_few_integer_values_are_multiclass() -> None:
    prepared = prepare(_frame([3, 5, 7] * 20), "label")
    assert prepared.problem_type is ProblemType.MULTICLASS
    assert prepared.classes == [3, 5, 7]
    assert set(prepared.y.tolist()) == {0, 1, 2}
    assert prepared.metric.name == "Accuracy"


def test_float_target_is_regression() -> None:
    values = np.random.default_rng(1).normal(size=N)
    prepared = prepare(_frame(values), "label")
    assert prepared.problem_type is ProblemType.REGRESSION
    assert prepared.classes is None
    assert prepared.y.dtype == np.float64
    np.testing.assert_allclose(prepared.y, values)
    assert prepared.metric.name == "MSE"


def test_explicit_problem_type_wins() -> None:
    prepared = prepare(_frame([1, 2, 3] * 20), "label", problem_type=ProblemType.REGRESSION)
    assert prepared.problem_type is ProblemType.REGRESSION
    assert prepared.y.tolist() == [1.0, 2.0, 3.0] * 20


def test_rows_with_missing_target_are_dropped_and_reported() -> None:
    target = ["yes", "no"] * 30
    target[4] = None
    target[9] = np.nan
    prepared = prepare(_frame(target), "label")
    assert prepared.dropped_rows == 2
    assert len(prepared.X) == len(prepared.y) == N - 2
    assert len(prepared.warnings) == 1
    assert "2 rows" in prepared.warnings[0]
    assert "label" in prepared.warnings[0]


def test_target_not_a_column_suggests_the_close_name() -> None:
    message = _error(TargetError, _frame(["a", "b"] * 30), target="lable")
    assert "'lable'" in message
    assert "did you mean 'label'" in message


def test_target_in_another_case_suggests_the_column() -> None:
    message = _error(TargetError, _frame(["a", "b"] * 30), target="LABEL")
    assert "'label'" in message


def test_target_far_from_any_column_lists_the_columns() -> None:
    message = _error(TargetError, _frame(["a", "b"] * 30), target="zzz")
    assert "x, color, label" in message


def test_target_all_missing() -> None:
    message = _error(TargetError, _frame([None] * N))
    assert "no values" in message


def test_single_class() -> None:
    message = _error(TargetError, _frame(["yes"] * N))
    assert "'yes'" in message


def test_fewer_than_20_rows() -> None:
    message = _error(DataError, _frame(["a", "b"] * 5, n=10))
    assert "10" in message and "20" in message


def test_missing_targets_counted_before_the_row_minimum() -> None:
    target = ["a", "b"] * 12
    target[:5] = [None] * 5
    message = _error(DataError, _frame(target, n=24))
    assert "only 19 usable rows" in message


def test_regression_on_a_non_numeric_target() -> None:
    message = _error(TargetError, _frame(["low", "mid", "high"] * 20),
                     problem_type=ProblemType.REGRESSION)
    assert "numeric" in message


def test_binary_requested_for_three_classes() -> None:
    message = _error(TargetError, _frame(["a", "b", "c"] * 20), problem_type=ProblemType.BINARY)
    assert "3" in message


def test_metric_name_is_case_insensitive() -> None:
    assert prepare(_frame(["a", "b"] * 30), "label", metric="auc").metric.name == "AUC"


def test_unknown_metric() -> None:
    message = _error(ConfigError, _frame(["a", "b"] * 30), metric="Gini")
    assert "'Gini'" in message


def test_metric_not_fitting_the_problem_type() -> None:
    message = _error(ConfigError, _frame(["a", "b"] * 30), metric="RMSE")
    assert "binary" in message
    assert "F1" in message


def test_sample_weight_column() -> None:
    df = _frame(["a", "b"] * 30)
    df["w"] = np.arange(N, dtype=float) + 1
    target = ["a", "b"] * 30
    target[0] = None
    df["label"] = target
    prepared = prepare(df, "label", sample_weight="w")
    assert list(prepared.X.columns) == ["x", "color"]
    np.testing.assert_array_equal(prepared.weights, np.arange(2, N + 1, dtype=float))
    assert "w" not in prepared.schema.kinds


def test_sample_weight_column_absent() -> None:
    message = _error(DataError, _frame(["a", "b"] * 30), sample_weight="weight")
    assert "'weight'" in message


def test_negative_sample_weight() -> None:
    df = _frame(["a", "b"] * 30)
    df["w"] = 1.0
    df.loc[3, "w"] = -1.0
    _error(DataError, df, sample_weight="w")


def test_no_usable_features() -> None:
    df = pd.DataFrame({"const": [1] * N, "label": ["a", "b"] * 30})
    _error(DataError, df)


def test_feature_types_file(tmp_path: Path) -> None:
    df = _frame(["a", "b"] * 30)
    df["rooms"] = [1, 2, 3] * 20
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"FeatureDataTypes": {"rooms": "categorical"}}))
    prepared = prepare(df, "label", feature_types_file=str(spec))
    assert prepared.schema.kinds["rooms"] is ColumnKind.CATEGORICAL


def test_feature_types_file_naming_an_unknown_column(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"FeatureDataTypes": {"rooms": "categorical"}}))
    message = _error(ConfigError, _frame(["a", "b"] * 30), feature_types_file=str(spec))
    assert "rooms" in message


def test_feature_types_file_naming_the_target(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"FeatureDataTypes": {"label": "categorical"}}))
    # pinned to what prepare does (it accepted either outcome, so it could never fail)
    message = _error(ConfigError, _frame(["a", "b"] * 30), feature_types_file=str(spec))
    assert "'label'" in message and "target" in message and "remove it" in message


def test_mixed_type_labels_work_as_strings() -> None:
    # pinned to what prepare does (it accepted a user error too, so it could never fail)
    prepared = prepare(_frame([1, "b", "c"] * 20), "label")
    assert prepared.classes == ["1", "b", "c"]


def test_features_share_the_tables_arrays_and_leave_the_table_as_it_was() -> None:
    """X is the table minus the target, without copying the other columns (a copy costs
    the table's size again); the caller's table keeps its target column."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=50), "b": rng.choice(["u", "v"], 50),
                       "y": rng.normal(size=50)})
    prepared = prepare(df, "y")
    assert list(prepared.X.columns) == ["a", "b"]
    assert prepared.X.index.equals(df.index)
    assert np.shares_memory(prepared.X["a"].to_numpy(), df["a"].to_numpy())
    assert list(df.columns) == ["a", "b", "y"]
