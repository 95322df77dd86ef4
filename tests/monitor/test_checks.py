"""Executions: in-distribution windows pass, each kind of damage is named exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tabpilot.monitor import COMPLETED, SAMPLE, WITH_VIOLATIONS
from tabpilot.monitor.baseline import load_baseline, write_baseline
from tabpilot.monitor.checks import evaluate


def _named(execution) -> set[tuple[str, str]]:
    return {(v["feature_name"], v["constraint_check_type"]) for v in execution.violations}


def test_held_out_rows_of_a_real_table_complete_without_violations(cancer, tmp_path) -> None:
    train, held = cancer
    execution = evaluate(write_baseline(train, tmp_path), held)
    assert execution.status == COMPLETED and execution.violations == []
    assert set(execution.drift) == set(train.columns)  # every feature compared
    assert execution.statistics["dataset"]["item_count"] == len(held)


def test_shifted_traffic_names_exactly_the_damaged_features_and_checks(cancer, tmp_path
                                                                        ) -> None:
    train, held = cancer
    baseline = write_baseline(train, tmp_path)
    window = held.copy()
    window["mean radius"] = window["mean radius"] * 3
    window = window.drop(columns="mean texture")
    texture = window["worst texture"].astype(object)
    texture.iloc[::2] = "n/a"
    window["worst texture"] = texture
    window["session id"] = np.arange(len(window))
    execution = evaluate(baseline, window)
    assert execution.status == WITH_VIOLATIONS
    assert _named(execution) == {("mean radius", "baseline_drift_check"),
                                 ("mean texture", "missing_column_check"),
                                 ("worst texture", "data_type_check"),
                                 ("session id", "extra_column_check")}
    assert execution.drift["mean radius"]["distance"] > 0.9
    texture_line = next(v for v in execution.violations
                        if v["feature_name"] == "worst texture")["description"]
    assert "Expected data type: Fractional" in texture_line
    assert "Only 49.7% of data" in texture_line  # 84 of 169 rows left numbers


def test_categories_completeness_and_category_drift(mixed, tmp_path) -> None:
    train, held = mixed
    baseline = write_baseline(train, tmp_path)
    assert evaluate(baseline, held).status == COMPLETED
    window = held.copy()
    window.loc[window.index[:200], "plan"] = "enterprise"  # 40 % outside the domain
    window.loc[window.index[:150], "income"] = np.nan  # 30 % missing against 95 % complete
    found = _named(evaluate(baseline, window))
    assert found == {("plan", "categorical_values_check"), ("plan", "baseline_drift_check"),
                     ("income", "completeness_check")}


def test_robust_waits_for_evidence_where_simple_fires_on_noise(mixed, tmp_path) -> None:
    train, held = mixed
    baseline = write_baseline(train, tmp_path)
    # 40 rows drawn from the baseline's own distribution: noise can exceed 0.1 at this size
    rng = np.random.default_rng(3)
    alarms = {"Robust": 0, "Simple": 0}
    for _ in range(20):
        window = held.sample(40, random_state=int(rng.integers(1 << 30)))
        for method in alarms:
            alarms[method] += any(v["constraint_check_type"] == "baseline_drift_check"
                                  for v in evaluate(baseline, window, method).violations)
    assert alarms["Robust"] == 0 < alarms["Simple"]


def test_a_window_with_only_text_in_a_number_column_is_one_type_violation(mixed, tmp_path
                                                                          ) -> None:
    train, held = mixed
    window = held.assign(score=pd.Series(["high"] * len(held), dtype=object))
    found = _named(evaluate(write_baseline(train, tmp_path), window))
    assert found == {("score", "data_type_check")}


def test_a_baseline_without_its_sample_compares_with_the_sketch(cancer, tmp_path) -> None:
    """A baseline folder Model Monitor wrote has no baseline_sample.parquet."""
    train, held = cancer
    write_baseline(train, tmp_path)
    (tmp_path / SAMPLE).unlink()
    baseline = load_baseline(tmp_path)
    assert len(baseline.values("mean radius")) == len(train)  # 400 values: all in the sketch
    assert evaluate(baseline, held).status == COMPLETED
    shifted = held.assign(**{"mean radius": held["mean radius"] * 3})
    assert _named(evaluate(baseline, shifted)) == {("mean radius", "baseline_drift_check")}
