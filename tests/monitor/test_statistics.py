"""statistics.json and constraints.json: Model Monitor's schema, pandas' numbers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from tabpilot.monitor import CONSTRAINTS, SAMPLE, STATISTICS
from tabpilot.monitor.baseline import load_baseline, write_baseline
from tabpilot.monitor.checks import ks_critical, ks_distance
from tabpilot.monitor.statistics import infer_type


def _feature(stats: dict, name: str) -> dict:
    return next(f for f in stats["features"] if f["name"] == name)


def test_statistics_equal_pandas_on_each_column(mixed, tmp_path) -> None:
    train, _ = mixed
    made = write_baseline(train, tmp_path)
    stats = json.loads((tmp_path / STATISTICS).read_text())
    assert stats == made.statistics and stats["dataset"]["item_count"] == len(train)
    for name in ("age", "income", "score"):
        column = train[name]
        numeric = _feature(stats, name)["numerical_statistics"]
        assert numeric["common"] == {"num_present": int(column.notna().sum()),
                                     "num_missing": int(column.isna().sum())}
        assert numeric["mean"] == pytest.approx(column.mean(), rel=1e-12)
        assert numeric["sum"] == pytest.approx(column.sum(), rel=1e-12)
        assert numeric["std_dev"] == pytest.approx(column.std(ddof=0), rel=1e-12)
        assert (numeric["min"], numeric["max"]) == (column.min(), column.max())
        buckets = numeric["distribution"]["kll"]["buckets"]
        assert len(buckets) == 10
        assert sum(b["count"] for b in buckets) == numeric["common"]["num_present"]
        assert buckets[0]["lower_bound"] == column.min()
        assert buckets[-1]["upper_bound"] == column.max()
        counts, _ = np.histogram(column.dropna(), bins=10, range=(column.min(), column.max()))
        assert [b["count"] for b in buckets] == counts.tolist()
    assert _feature(stats, "income")["numerical_statistics"]["common"]["num_missing"] > 0
    plan = _feature(stats, "plan")["string_statistics"]
    assert plan["distinct_count"] == 3
    assert {b["value"]: b["count"] for b in plan["distribution"]["categorical"]["buckets"]} \
        == train["plan"].value_counts().to_dict()
    assert {f["name"]: f["inferred_type"] for f in stats["features"]} == {
        "age": "Integral", "income": "Fractional", "plan": "String", "score": "Fractional"}


def test_constraints_carry_completeness_domains_and_monitoring_config(mixed, tmp_path) -> None:
    train, _ = mixed
    write_baseline(train, tmp_path, method="Simple", threshold=0.2)
    constraints = json.loads((tmp_path / CONSTRAINTS).read_text())
    features = {f["name"]: f for f in constraints["features"]}
    assert features["income"]["completeness"] == pytest.approx(train["income"].notna().mean())
    assert features["age"]["num_constraints"] == {"is_non_negative": True}
    assert features["score"]["num_constraints"] == {"is_non_negative": False}
    assert sorted(features["plan"]["string_constraints"]["domains"]) == ["basic", "plus", "pro"]
    config = constraints["monitoring_config"]
    assert config["evaluate_constraints"] == "Enabled"
    assert config["datatype_check_threshold"] == config["domain_content_threshold"] == 0.1
    assert config["distribution_constraints"] == {
        "perform_comparison": "Enabled", "comparison_threshold": 0.2,
        "comparison_method": "Simple", "categorical_comparison_threshold": 0.1,
        "categorical_drift_method": "LInfinity"}


def test_types_are_read_from_values_as_model_monitor_reads_text() -> None:
    assert infer_type(pd.Series(["1", "2", None, " 3 "])) == "Integral"
    assert infer_type(pd.Series([1.0, 2.0, np.nan])) == "Integral"
    assert infer_type(pd.Series(["1.5", "2"])) == "Fractional"
    assert infer_type(pd.Series(["1", "a"])) == "String"
    assert infer_type(pd.Series([None, ""], dtype=object)) == "Unknown"


def test_the_sample_is_bounded_and_the_distance_is_scipys_ks(cancer, tmp_path) -> None:
    train, held = cancer
    made = write_baseline(train, tmp_path, sample_rows=300)
    assert len(pd.read_parquet(tmp_path / SAMPLE)) == 300
    reference = load_baseline(tmp_path).values("mean radius")
    assert len(reference) == 300
    rng = np.random.default_rng(1)
    for window in (held["mean radius"].to_numpy(), held["mean radius"].to_numpy() * 1.1,
                   rng.integers(0, 5, 50).astype(float), reference[:7]):
        assert abs(ks_distance(reference, window) - ks_2samp(reference, window).statistic) \
            < 1e-9
    assert made.values("no such column").size == 0


def test_the_robust_critical_distance_shrinks_with_the_window() -> None:
    small, large = ks_critical(10_000, 200, 0.05), ks_critical(10_000, 10_000, 0.05)
    assert small > 0.09 > 0.02 > large
    assert ks_critical(10_000, 200, 0.005) > small  # stricter with more features compared
