"""Bad input to the CLI: exit code 2, one `error:` line naming the problem, no job left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpilot.store import Store

JOB = "badjob"


def run_cli(*args: str, workspace: Path, cwd: Path | None = None
            ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TABPILOT_WORKSPACE"}
    env["COLUMNS"] = "80"  # a narrow terminal must not wrap the error line
    return subprocess.run(
        [sys.executable, "-m", "tabpilot.cli", *args, "--workspace", str(workspace)],
        capture_output=True, text=True, timeout=120, env=env, cwd=cwd,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *keywords: str) -> str:
    """Exit 2, exactly one non-empty stderr line starting with `error:`, with the key words."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "Traceback" not in proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("error:"), line
    for word in keywords:
        assert word.lower() in line.lower(), (word, line)
    return line


def assert_no_job_left(workspace: Path, name: str = JOB) -> None:
    """No row in the workspace's store and no jobs/<name> folder."""
    store = Store.for_workspace(workspace)
    assert store.list_jobs() == []
    assert not store.job_exists(name)
    assert not (workspace / "jobs" / name).exists()
    jobs_dir = workspace / "jobs"
    assert not jobs_dir.exists() or list(jobs_dir.iterdir()) == []


def _frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rng.normal(size=n)
    label = np.where(a + 0.5 * rng.normal(size=n) > 0, "yes", "no")
    return pd.DataFrame({"alpha": a, "beta": b, "label": label})


# -- table makers: each writes one bad (or good) input into `d` and returns its path ----------
def _missing_file(d: Path) -> Path:
    return d / "does-not-exist.csv"


def _empty_file(d: Path) -> Path:
    path = d / "empty.csv"
    path.write_bytes(b"")
    return path


def _no_header(d: Path) -> Path:
    path = d / "noheader.csv"
    _frame().assign(label=lambda f: (f["label"] == "yes").astype(int)).to_csv(
        path, index=False, header=False)
    return path


def _good(d: Path) -> Path:
    path = d / "good.csv"
    _frame().to_csv(path, index=False)
    return path


def _target_all_missing(d: Path) -> Path:
    path = d / "allmissing.csv"
    _frame().assign(label="").to_csv(path, index=False)
    return path


def _single_class(d: Path) -> Path:
    path = d / "single.csv"
    _frame().assign(label="yes").to_csv(path, index=False)
    return path


def _few_rows(d: Path) -> Path:
    path = d / "few.csv"
    _frame(15).to_csv(path, index=False)
    return path


def _few_usable_rows(d: Path) -> Path:
    # 30 rows, but 12 without a target: 18 usable, fewer than the 20 needed
    path = d / "few_usable.csv"
    df = _frame(30)
    df.loc[df.index[:12], "label"] = None
    df.to_csv(path, index=False)
    return path


def _text_target(d: Path) -> Path:
    path = d / "text_target.csv"
    _frame().to_csv(path, index=False)
    return path



CASES = [
    pytest.param(_missing_file, [], ["does-not-exist.csv", "does not exist"],
                 id="missing-file"),
    pytest.param(_empty_file, [], ["empty.csv", "empty"], id="empty-file"),
    pytest.param(_no_header, [], ["noheader.csv", "no header"], id="no-header-row"),
    pytest.param(_good, ["--target", "lable"], ["'lable'", "not a column", "did you mean",
                                                "'label'"], id="target-not-a-column"),
    pytest.param(_good, ["--target", "LABEL"], ["'LABEL'", "not a column", "did you mean",
                                                "'label'"], id="target-wrong-case"),
    pytest.param(_target_all_missing, [], ["'label'", "no values", "missing"],
                 id="target-all-missing"),
    pytest.param(_single_class, [], ["'label'", "single"], id="single-class"),
    pytest.param(_few_rows, [], ["15 usable rows", "20"], id="fewer-than-20-rows"),
    pytest.param(_few_usable_rows, [], ["18 usable rows", "20"],
                 id="fewer-than-20-usable-rows"),
    pytest.param(_text_target, ["--problem-type", "regression"],
                 ["regression", "numeric", "'label'"], id="regression-on-text-target"),
    pytest.param(_good, ["--metric", "Foo"], ["unknown metric", "'Foo'"], id="unknown-metric"),
    pytest.param(_good, ["--metric", "RMSE"], ["RMSE", "binary"], id="metric-wrong-for-problem"),
    pytest.param(_good, ["--time-limit", "0"], ["time limit", "more than 0"],
                 id="time-limit-zero"),
    pytest.param(_good, ["--time-limit", "-5"], ["time limit", "-5"], id="time-limit-negative"),
    pytest.param(_good, ["--max-latency-ms", "0"], ["max latency", "more than 0 ms", "got 0"],
                 id="max-latency-zero"),
    pytest.param(_good, ["--max-latency-ms", "-2.5"], ["max latency", "got -2.5"],
                 id="max-latency-negative"),
]


@pytest.mark.parametrize(("make", "extra", "keywords"), CASES)
def test_run_with_bad_input_exits_2_with_one_error_line_and_no_job(
        tmp_path: Path, make: Callable[[Path], Path], extra: list[str], keywords: list[str]
) -> None:
    data = make(tmp_path)
    ws = tmp_path / "ws"
    args = ["run", str(data), "--name", JOB, "--time-limit", "8", "--workers", "2"]
    if "--target" not in extra:
        args += ["--target", "label"]
    proc = run_cli(*args, *extra, workspace=ws)
    assert_one_line_error(proc, *keywords)
    assert proc.stdout.strip() == ""
    assert_no_job_left(ws)


def test_directory_given_as_the_table_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.csv"
    folder.mkdir()
    ws = tmp_path / "ws"
    proc = run_cli("run", str(folder), "--target", "label", "--name", JOB, workspace=ws)
    assert_one_line_error(proc, "a-folder.csv", "folder")
    assert_no_job_left(ws)


def test_unreadable_file_is_rejected(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    if os.geteuid() == 0:
        # root reads a chmod 000 file anyway; a folder is the unreadable input instead
        unreadable = tmp_path / "unreadable"
        unreadable.mkdir()
        keywords = ["unreadable", "folder"]
    else:
        unreadable = _good(tmp_path).rename(tmp_path / "unreadable.csv")
        unreadable.chmod(0)
        keywords = ["unreadable.csv", "permission denied"]
    try:
        proc = run_cli("run", str(unreadable), "--target", "label", "--name", JOB,
                       workspace=ws)
    finally:
        unreadable.chmod(0o755)
    assert_one_line_error(proc, *keywords)
    assert_no_job_left(ws)


def test_no_job_is_listed_after_bad_input(tmp_path: Path) -> None:
    """`tabpilot list --json` in the workspace shows no job after a rejected run."""
    ws = tmp_path / "ws"
    proc = run_cli("run", str(_single_class(tmp_path)), "--target", "label", "--name", JOB,
                   workspace=ws)
    assert_one_line_error(proc, "single")
    listed = run_cli("list", "--json", workspace=ws)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == {"AutoMLJobSummaries": []}


def test_duplicate_job_name_is_rejected_and_first_job_untouched(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    data = _good(tmp_path)
    args = ["run", str(data), "--target", "label", "--time-limit", "30", "--max-candidates", "2",
            "--algorithms", "linear", "--name", "dup", "--workers", "2", "--json"]
    first = run_cli(*args, workspace=ws)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["AutoMLJobStatus"] == "Completed"
    store = Store.for_workspace(ws)
    before = store.get_job("dup")
    job_dir = Path(before.job_dir)
    job_json = (job_dir / "job.json").read_text()
    board = (job_dir / "leaderboard.csv").read_text()
    n_candidates = len(store.list_candidates("dup"))

    again = run_cli(*args, workspace=ws)
    assert_one_line_error(again, "'dup'", "already exists")
    assert again.stdout.strip() == ""

    after = store.get_job("dup")
    assert after.status == "Completed"
    assert after.secondary_status == before.secondary_status
    assert after.best_candidate == before.best_candidate
    assert after.modified == before.modified
    assert after.ended == before.ended
    assert len(store.list_candidates("dup")) == n_candidates
    assert (job_dir / "job.json").read_text() == job_json
    assert (job_dir / "leaderboard.csv").read_text() == board
    assert [j.name for j in store.list_jobs()] == ["dup"]


def test_describe_unknown_job_exits_2_with_one_line(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    proc = run_cli("describe", "NOPE", workspace=ws)
    assert_one_line_error(proc, "'NOPE'", "no job")


def test_predict_with_unknown_job_exits_2_with_one_line(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    rows = tmp_path / "x.csv"
    _frame(5).drop(columns="label").to_csv(rows, index=False)
    out = tmp_path / "y.csv"
    proc = run_cli("predict", "NOPE", str(rows), "-o", str(out), workspace=ws, cwd=tmp_path)
    assert_one_line_error(proc, "'NOPE'", "no job")
    assert not out.exists()
