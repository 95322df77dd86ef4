"""What a job says in words (console.py) and how the CLI draws the leaderboard
(cli_output.py), on made-up progress and leaderboards: no job runs here."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from rich.console import Console

from tabpilot.cli_output import decimals_for, leaderboard_table, print_leaderboard
from tabpilot.console import PYTHON_FLAGS, ProgressLog, Said, final_line, inferred_lines, validation_line
from tabpilot.jobs.progress import Progress

ANALYSIS = {"rows": 6497, "problem_type": "multiclass", "metric": "Accuracy", "mode": "ensembling",
            "classes": [3, 4, 5, 6, 7, 8, 9],
            "reasons": {"problem_type": "7 distinct whole numbers (at most 20) -> multiclass",
                        "metric": "the default for multiclass", "feature_types": "inferred"},
            "schema": {"alcohol": "numeric", "color": "categorical", "id": "id"},
            "insights": [{"kind": "target_leakage", "severity": "high",
                          "message": "column 'grade' predicts the target almost perfectly",
                          "fix": "drop it"},
                         {"kind": "target_leakage", "severity": "low", "message": "row order"}]}


def _board(names: list[str]) -> pd.DataFrame:
    n = len(names)
    return pd.DataFrame({
        "rank": range(1, n + 1), "candidate": names, "algorithm": ["LightGBM"] * n,
        "objective": [0.91234, 0.9, 12.5, 1234.5][:n], "fit_seconds": [1.0] * n,
        "latency_ms_p50": [1.064, 11.45, 0.5392, 3.0][:n],
        "throughput_rows_s": [120000.0] * n, "model_bytes": [2.5e6] * n,
        "pareto": [True, False, True, False][:n]})


def _text(table, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(table)
    return console.file.getvalue()


def test_inferred_lines_give_reason_and_override() -> None:
    lines = inferred_lines(ANALYSIS)
    assert lines[0].startswith("problem type: multiclass (inferred: 7 distinct whole numbers")
    assert "override with --problem-type" in lines[0]
    assert "Accuracy (the default for multiclass); override with --metric" in lines[1]
    assert "1 numeric (alcohol)" in lines[2] and "1 categorical (color)" in lines[2]
    assert "override with --feature-types FILE" in lines[2]
    given = dict(ANALYSIS, reasons={"problem_type": "given", "metric": "given",
                                    "feature_types": "given in types.json"})
    assert "override" not in " ".join(inferred_lines(given))
    assert "problem_type=" in inferred_lines(ANALYSIS, PYTHON_FLAGS)[0]


def test_the_validation_split_is_said_once_when_made_with_its_override() -> None:
    holdout = {"split": "a holdout of 2,500 rows, 7.7% of 32,561 (32,561 rows, 10,000 or "
                        "more; its size AutoGluon's rule)", "given": False}
    assert validation_line(holdout) == (f"validation: {holdout['split']}; override with "
                                        "--folds N or --validation-fraction F")
    assert validation_line(holdout, PYTHON_FLAGS).endswith("folds= or validation_fraction=")
    assert "override" not in validation_line(dict(holdout, given=True))
    said = Said()
    assert said.new_lines(_progress()) == []
    first = said.new_lines(_progress(analysis=ANALYSIS))
    assert first[0].startswith("problem type:") and not any("validation" in x for x in first)
    assert said.new_lines(_progress(analysis=ANALYSIS, validation=holdout)) == [
        validation_line(holdout)]
    assert said.new_lines(_progress(analysis=ANALYSIS, validation=holdout)) == []


def _progress(**changes) -> Progress:
    p = Progress("job-1", "InProgress", "ModelTuning", 10.0, 60.0, metric="Accuracy",
                 phase="ModelTuning")
    for k, v in changes.items():
        setattr(p, k, v)
    return p


def test_progress_log_one_line_per_phase_every_ten_trials_and_final() -> None:
    lines: list[str] = []
    log = ProgressLog(lines.append)
    log(_progress(secondary_status="AnalyzingData", phase="AnalyzingData", analysis=ANALYSIS))
    for done in range(1, 24):  # called after every poll: no repeated lines
        log(_progress(done=done, best_value=0.9, best_candidate="lightgbm-000"))
        log(_progress(done=done, best_value=0.9, best_candidate="lightgbm-000"))
    log(_progress(secondary_status="TrainingModels", phase="Ensembling", done=23))
    log(_progress(status="Completed", secondary_status="MaxAutoMLJobRuntimeReached",
                  done=23, failed=1, best_value=0.93, best_candidate="ensemble-024"))
    log(_progress(status="Completed", secondary_status="MaxAutoMLJobRuntimeReached"))
    text = "\n".join(lines)
    assert text.count("AnalyzingData:") == 1 and text.count("ModelTuning:") == 1
    assert text.count("Ensembling:") == 1
    assert [line for line in lines if "trials done" in line and "left" in line] == [
        line for line in lines if line.endswith("s left")]
    assert sum(" trials done" in line and "left" in line for line in lines) == 2  # 10, 20
    assert "warning (high): column 'grade'" in text and "row order" not in text
    assert lines[-1] == ("job job-1: Completed (MaxAutoMLJobRuntimeReached) in 10.0s; "
                         "23 trials done, 1 failed; best Accuracy 0.93 (ensemble-024)")


def test_progress_log_verbosity() -> None:
    lines: list[str] = []
    quiet = ProgressLog(lines.append, verbosity=0)
    quiet(_progress(done=1))
    assert lines == []
    chatty = ProgressLog(lines.append, verbosity=2)
    for done in (1, 2, 3):
        chatty(_progress(done=done))
    assert sum("trials done" in line for line in lines) == 3


def test_final_line_without_a_model_says_why() -> None:
    line = final_line(_progress(status="Failed", secondary_status="Failed",
                                failure_reason="no candidate finished"))
    assert "no best candidate" in line and line.endswith("reason: no candidate finished")


@pytest.mark.parametrize("width", [60, 80, 120])
def test_candidate_names_are_never_cut(width: int) -> None:
    names = ["ensemble-031-distilled-from-a-long-name", "stack-030", "lightgbm-000",
             "random_forest-012"]
    text = _text(leaderboard_table(_board(names), "Accuracy", best=names[0], width=width),
                 width)
    for name in names:
        assert name in text
    assert max(len(line) for line in text.splitlines()) <= width
    if width < 120:
        assert "left out for the terminal's width: rows/s" in text


def test_columns_are_dropped_least_useful_first_and_wide_keeps_them() -> None:
    board = _board(["a-very-long-candidate-name-indeed-000", "lightgbm-001"])
    narrow = _text(leaderboard_table(board, "F1", width=70), 70)
    assert "rows/s" not in narrow.split("left out")[0] and "ms/row" in narrow
    out = Console(file=io.StringIO(), width=70, color_system=None)
    print_leaderboard(out, board, "F1", wide=True)
    wide = out.file.getvalue()
    assert "rows/s" in wide and "left out" not in wide


def test_one_format_per_column_and_a_legend_for_every_marker() -> None:
    text = _text(leaderboard_table(_board(["a", "b", "c"]), "F1", best="a", width=200), 200)
    for value in ("1.064", "11.450", "0.539"):  # ms/row: three decimals each
        assert value in text
    assert "0.91" in text and "12.50" in text  # the objective: one number of decimals
    assert "* the candidate the job hands out" in text and "pareto: on the accuracy" in text


def test_decimals_follow_the_largest_value() -> None:
    assert decimals_for(pd.Series([0.5, 0.91])) == 4
    assert decimals_for(pd.Series([12.0, 3.0])) == 2
    assert decimals_for(pd.Series([45_000.0, float("nan")])) == 0
