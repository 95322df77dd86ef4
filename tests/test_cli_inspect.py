"""`tabpilot list`, `compare` and `--version` on two small finished jobs."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from rich.console import Console
from sklearn.datasets import load_breast_cancer

from tabpilot import AutoML
from tabpilot.cli import main
from tabpilot.cli_inspect import compare_table, jobs_table
from tabpilot.store import Store

CSV_JOB = "inspect-breast-cancer-linear"  # long, so that a narrow terminal must drop columns
FRAME_JOB = "inspect-frame"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two tiny completed jobs: one read from a CSV file, one from a DataFrame."""
    root = tmp_path_factory.mktemp("inspect")
    frame = load_breast_cancer(as_frame=True).frame
    frame.to_csv(root / "cancer.csv", index=False)
    ws = root / "ws"
    for name, data in ((CSV_JOB, str(root / "cancer.csv")), (FRAME_JOB, frame.iloc[:300])):
        AutoML("target", workspace=ws, name=name, time_limit=15, max_candidates=1,
               algorithms=["linear"], problem_type="binary").fit(data)
    return ws


def _cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """The console script's `main`, in this process: (exit code, stdout, stderr)."""
    old = sys.argv
    sys.argv = ["tabpilot", *args]
    try:
        with pytest.raises(SystemExit) as exited:
            main()
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def _render(table, width: int) -> list[str]:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(table)
    return console.file.getvalue().splitlines()


def test_version(capsys) -> None:
    code, out, _ = _cli(capsys, "--version")
    assert code == 0 and out == f"tabpilot {version('tabpilot')}\n"


def test_list_json_fields(workspace: Path, capsys) -> None:
    code, out, _ = _cli(capsys, "list", "--json", "-w", str(workspace))
    assert code == 0
    jobs = {j["AutoMLJobName"]: j for j in json.loads(out)["AutoMLJobSummaries"]}
    assert set(jobs) == {CSV_JOB, FRAME_JOB}
    store = Store.for_workspace(workspace, create=False)
    for name, job in jobs.items():
        row = store.get_job(name)
        assert job["AutoMLJobStatus"] == "Completed"
        assert job["ProblemType"] == "binary" and job["ObjectiveMetric"] == "F1"
        assert job["BestCandidate"] == row.best_candidate is not None
        assert job["BestObjectiveValue"] == store.get_candidate(name, row.best_candidate).objective
        assert job["ElapsedSeconds"] == pytest.approx(row.stats["seconds"], abs=1e-3)
        assert 0 < job["ElapsedSeconds"] < 120
        created = dt.datetime.fromisoformat(job["CreationTime"])
        assert created.tzinfo is not None and created.timestamp() == pytest.approx(row.created)
        assert dt.datetime.fromisoformat(job["EndTime"]) >= created
    assert jobs[CSV_JOB]["TrainingData"].endswith("cancer.csv")
    assert jobs[FRAME_JOB]["TrainingData"] == "<DataFrame>"
    assert (jobs[CSV_JOB]["Rows"], jobs[FRAME_JOB]["Rows"]) == (569, 300)


def test_list_fits_80_columns_without_cutting_names(workspace: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tabpilot", "list", "-w", str(workspace)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    text = done.stdout
    assert CSV_JOB in text and FRAME_JOB in text  # whole, never "inspect-breast-canc…"
    assert "F1 0." in text  # the best score with its metric


def test_list_table_drops_columns_in_order(workspace: Path, capsys) -> None:
    _, out, _ = _cli(capsys, "list", "--json", "-w", str(workspace))
    rows = json.loads(out)["AutoMLJobSummaries"]
    wide = "\n".join(_render(jobs_table(rows, None), 400))
    for header in ("best score", "best candidate", "duration", "table", "problem", "created"):
        assert header in wide
    assert "cancer.csv" in wide and "DataFrame" in wide and "left out" not in wide
    narrow = _render(jobs_table(rows, 60), 60)
    assert max(len(line) for line in narrow) <= 60
    text = "\n".join(narrow)
    assert CSV_JOB in text and "best score" in text
    assert "left out for the terminal's width: created, problem" in text
    best = {r["BestCandidate"] for r in rows}
    roomy = "\n".join(_render(jobs_table(rows, 100), 100))
    assert all(name in roomy for name in best)  # whole candidate names, as --candidate takes


def test_compare_json_matches_the_store(workspace: Path, capsys) -> None:
    code, out, _ = _cli(capsys, "compare", CSV_JOB, FRAME_JOB, "--json", "-w", str(workspace))
    assert code == 0
    views = json.loads(out)["Jobs"]
    assert [v["AutoMLJobName"] for v in views] == [CSV_JOB, FRAME_JOB]
    store = Store.for_workspace(workspace, create=False)
    for v in views:
        row = store.get_job(v["AutoMLJobName"])
        best = store.get_candidate(row.name, row.best_candidate)
        assert v["BestCandidate"] == best.name and v["Algorithm"] == best.algorithm
        assert v["ObjectiveMetric"] == {"MetricName": "F1", "Value": best.objective}
        assert v["ValidationMetrics"] == store.metrics(row.name)[best.name]["validation"]
        assert {"AUC", "Accuracy", "F1"} <= set(v["ValidationMetrics"])
        assert v["InferenceLatencyMs"] == {"p50": best.latency_ms_p50, "p99": None}
        assert (v["ModelBytes"], v["FitSeconds"]) == (best.model_bytes, best.fit_seconds)
        assert v["ProblemType"] == "binary" and v["CandidatesCompleted"] >= 1
    assert (views[0]["Rows"], views[1]["Rows"]) == (569, 300)

    table = _render(compare_table(views), 80)
    text = "\n".join(table)
    assert max(len(line) for line in table) <= 80
    assert CSV_JOB in text and FRAME_JOB in text
    assert "objective: F1" in text and "AUC" in text and "latency p50 ms/row" in text
    assert text.count("│ F1 ") == 0  # the objective is not listed twice


def test_compare_names_the_missing_job(workspace: Path, capsys) -> None:
    code, out, err = _cli(capsys, "compare", CSV_JOB, "no-such-job", "-w", str(workspace))
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "error: no job named 'no-such-job' in this workspace; `tabpilot list` shows the jobs"]


def test_compare_measure_times_p99(workspace: Path, capsys) -> None:
    code, out, _ = _cli(capsys, "compare", FRAME_JOB, "--measure", "--json",
                        "-w", str(workspace))
    assert code == 0
    latency = json.loads(out)["Jobs"][0]["InferenceLatencyMs"]
    assert 0 < latency["p50"] <= latency["p99"]
