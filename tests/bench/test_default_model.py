"""bench.default_model's verdicts: the test-score gap, the HTTP goal, the summary line."""

from __future__ import annotations

import numpy as np
import pytest

from bench import default_model as bench


def fake(table: str, metric: str, default: tuple[str, float, float], best: float
         ) -> dict:
    name, score, http_ms = default
    record = {"table": table, "metric": metric, "status": "ok",
              "default": {"name": name, "test_score": score, "http_p50_ms": http_ms},
              "best": {"name": "ensemble-003", "test_score": best}}
    return record | bench.verdict(record)


def test_gap_is_positive_when_the_default_is_worse_in_the_metrics_direction() -> None:
    assert bench.relative_gap(0.99, 1.0, "AUC") == pytest.approx(0.01)
    assert bench.relative_gap(1.01, 1.0, "RMSE") == pytest.approx(0.01)
    assert bench.relative_gap(0.9, 1.0, "LogLoss") == pytest.approx(-0.1)
    assert str(bench.relative_gap(2.0, 2.0, "RMSE")) == "0.0"  # not -0.0


def test_verdict_and_summary_on_fake_records() -> None:
    records = [fake("a", "AUC", ("ensemble-003-distilled", 0.899, 0.9), 0.9),
               fake("b", "RMSE", ("ensemble-003", 10.0, 3.5), 10.0),
               fake("c", "LogLoss", ("lightgbm-001", 0.55, 2.0), 0.5),
               {"table": "d", "status": "error", "error": "fit: boom"}]
    a, b, c = records[:3]
    assert a["http_ok"] and a["within_tolerance"] and a["hands_out_distilled"]
    assert not b["http_ok"] and b["within_tolerance"] and not b["hands_out_distilled"]
    assert c["http_ok"] and not c["within_tolerance"]  # 10 % worse; 2.0 ms meets the goal
    line = bench.summary(records)
    assert line.startswith("2/3 tables meet HTTP p50")
    assert "max 10.00% (c)" in line and "within 0.5%: 2/3" in line
    assert "handed out on 1: a" in line and "1 table(s) failed" in line


def test_the_report_names_the_latency_bound_its_jobs_were_given() -> None:
    assert "--max-latency-ms" not in bench.report([], {}, 60.0).splitlines()[0]
    assert bench.report([], {}, 60.0, 1.0).splitlines()[0] == \
        "## The model a job hands out by default, budget 60 s, --max-latency-ms 1 (0 tables)"


def test_the_http_pass_rotates_its_order_and_takes_the_median_of_the_rounds() -> None:
    names = ["a", "b", "c"]
    assert [bench.http_order(names, r) for r in range(4)] == [
        ["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert bench.http_order([], 2) == []
    # one slow round (the machine busy) does not move the p50
    rounds = [np.full(10, 1.5), np.full(10, 4.0), np.full(10, 1.7)]
    figures = bench.http_summary(rounds)
    assert figures["http_p50_ms"] == pytest.approx(1.7)
    assert figures["http_round_p50_ms"] == pytest.approx([1.5, 4.0, 1.7])
    assert figures["http_calls"] == 30 and figures["http_p99_ms"] == pytest.approx(4.0)


def test_a_record_timed_by_neither_pass_yet_reports_no_http_figure() -> None:
    record = {"table": "a", "metric": "AUC", "status": "ok",
              "default": {"name": "lightgbm-001", "algorithm": "LightGBM", "objective": 0.9,
                          "test_score": 0.9, "in_process_p50_ms": 0.2,
                          "in_process_p99_ms": 0.3},
              "best": {"name": "lightgbm-001", "objective": 0.9, "test_score": 0.9}}
    record |= bench.verdict(record)
    assert not record["http_ok"]
    row = bench.table_row(bench.Table("a", "f.csv", "binary", "y"), record, {})
    assert row[10] == "– / –" and row[11] == "NO"


def test_a_pruned_student_shows_its_validation_score_and_why_it_has_no_test_score() -> None:
    pruned = {"name": "ensemble-018-distilled", "status": "Pruned", "objective": 2.3914,
              "reason": "not among the job's kept candidates"}
    assert bench._distilled_cell(pruned) == "pruned, val 2.3914"
    assert bench._distilled_cell({"status": "Failed"}) == "Failed"
    assert bench._distilled_cell(None) == "none"


def test_a_fast_ensemble_handed_out_shows_its_latency_budget() -> None:
    record = {"table": "a", "metric": "AUC", "status": "ok",
              "default": {"name": "ensemble-009-fast", "algorithm": "Ensemble",
                          "latency_budget_ms": 1.25, "objective": 0.9, "test_score": 0.9,
                          "in_process_p50_ms": 0.6, "in_process_p99_ms": 0.8},
              "best": {"name": "ensemble-008", "algorithm": "Ensemble", "objective": 0.901,
                       "test_score": 0.9}}
    record |= bench.verdict(record)
    row = bench.table_row(bench.Table("a", "f.csv", "binary", "y"), record, {})
    assert row[2] == "ensemble-009-fast (Ensemble, budget 1.25 ms)"
