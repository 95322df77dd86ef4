"""Bad input to the CLI: exit code 2, one `error:` line naming the problem, nothing written.

A refused input leaves no workspace behind: no folder, no empty `tabpilot.db`. Inputs that
look bad but are readable are read instead, and the tests say so: a CSV that is not UTF-8
is read as Windows-1252 (Latin-1 for the bytes that leaves undefined) with a warning naming
the encoding; nested JSON objects are flattened into `parent.child` columns as
pandas.json_normalize names them, while JSON lists are refused naming the column.
"""

from __future__ import annotations

import importlib.util
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


def assert_nothing_written(workspace: Path) -> None:
    """The workspace was not created: no folder, no database, no job folder."""
    assert not workspace.exists(), sorted(str(p) for p in workspace.rglob("*"))


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


def _header_only(d: Path) -> Path:
    path = d / "header_only.csv"
    path.write_text("alpha,beta,label\n")
    return path


def _all_missing_features(d: Path) -> Path:
    path = d / "nan_features.csv"
    _frame().assign(alpha=np.nan, beta=np.nan).to_csv(path, index=False)
    return path


def _duplicate_columns(d: Path) -> Path:
    path = d / "dup_columns.csv"
    _frame().rename(columns={"beta": "alpha"}).to_csv(path, index=False)
    return path


def _nested_json(d: Path) -> Path:
    """JSON lines whose `meta` is an object: read as columns meta.x and meta.kind."""
    path = d / "nested.jsonl"
    rows = [{"alpha": r.alpha, "meta": {"x": r.beta, "kind": "a"}, "label": r.label}
            for r in _frame().itertuples()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _json_list_column(d: Path) -> Path:
    path = d / "lists.jsonl"
    rows = [{"alpha": r.alpha, "tags": ["x", "y"][: i % 3], "label": r.label}
            for i, r in enumerate(_frame().itertuples())]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _xlsx_renamed(d: Path) -> Path:
    """An Excel workbook saved as .xlsx, then renamed to .csv (a zip: it starts PK\\3\\4)."""
    path = d / "workbook.csv"
    if importlib.util.find_spec("openpyxl") is not None:
        _frame().to_excel(path, index=False, engine="openpyxl")
    else:
        path.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 40)
    assert path.read_bytes()[:4] == b"PK\x03\x04"
    return path


def _huge_header(d: Path) -> Path:
    """A 10 MB header line (one absurd column name), and no `label` column."""
    path = d / "huge_header.csv"
    path.write_text("x" * 10_000_000 + ",other\n" + "1,2\n" * 30)
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
    pytest.param(_good, ["--selection", "fastest"], ["selection", "balanced", "accuracy"],
                 id="selection-unknown"),
    pytest.param(_good, ["--time-limit", "1e12"], ["time limit", "at most", "1e+12"],
                 id="time-limit-huge"),
    pytest.param(_good, ["--time-limit", "inf"], ["time limit", "at most", "inf"],
                 id="time-limit-infinite"),
    pytest.param(_good, ["--time-limit", "nan"], ["time limit", "nan"], id="time-limit-nan"),
    pytest.param(_good, ["--time-limit", "ten"], ["invalid value", "--time-limit", "--help"],
                 id="time-limit-not-a-number"),
    pytest.param(_good, ["--name", "a/b"], ["job name", "'a/b'", "invalid"],
                 id="job-name-with-slash"),
    pytest.param(_good, ["--name", ".."], ["job name", "'..'", "invalid"], id="job-name-dotdot"),
    pytest.param(_good, ["--name", "j" * 33], ["job name", "1-32"], id="job-name-too-long"),
    pytest.param(_header_only, [], ["header_only.csv", "no data rows"], id="header-only"),
    pytest.param(_all_missing_features, [], ["no usable feature", "empty"],
                 id="features-all-missing"),
    pytest.param(_duplicate_columns, [], ["dup_columns.csv", "duplicate column", "'alpha'"],
                 id="duplicate-column-names"),
    # nested objects are flattened (json_normalize's names): `meta` is gone, meta.x is there
    pytest.param(_nested_json, ["--target", "meta"],
                 ["'meta'", "not a column", "did you mean", "'meta.x'"],
                 id="nested-json-flattened-target-is-a-parent"),
    pytest.param(_nested_json, ["--target", "meta.kind"], ["'meta.kind'", "single", "'a'"],
                 id="nested-json-flattened-single-class"),
    pytest.param(_json_list_column, [], ["lists.jsonl", "'tags'", "lists"],
                 id="json-list-column"),
    pytest.param(_good, ["--sample-weight", "label"], ["sample weight", "'label'", "target"],
                 id="sample-weight-is-target"),
    pytest.param(_good, ["--sample-weight", "gamma"], ["sample weight", "'gamma'", "not in"],
                 id="sample-weight-not-a-column"),
    pytest.param(_xlsx_renamed, [], ["workbook.csv", "excel", "zip", "save it as csv"],
                 id="xlsx-renamed-to-csv"),
    pytest.param(_good, ["--validation-data", "nope.csv"], ["nope.csv", "does not exist"],
                 id="validation-data-missing"),
    pytest.param(_good, ["--algorithms", "lightgbm,nope"], ["unknown algorithm", "'nope'"],
                 id="unknown-algorithm"),
]


@pytest.mark.parametrize(("make", "extra", "keywords"), CASES)
def test_run_with_bad_input_exits_2_with_one_error_line_and_no_job(
        tmp_path: Path, make: Callable[[Path], Path], extra: list[str], keywords: list[str]
) -> None:
    data = make(tmp_path)
    ws = tmp_path / "ws"
    args = ["run", str(data), "--workers", "2"]
    for option, default in (("--target", "label"), ("--name", JOB), ("--time-limit", "8")):
        if option not in extra:
            args += [option, default]
    proc = run_cli(*args, *extra, workspace=ws, cwd=tmp_path)
    assert_one_line_error(proc, *keywords)
    assert proc.stdout.strip() == ""
    assert_nothing_written(ws)


def test_huge_header_gives_a_short_line(tmp_path: Path) -> None:
    """A 10 MB column name: refused (no `label`), the name cut short. (A quadratic scan of
    the header would hit run_cli's time-out; speed itself is not asserted here.)"""
    data = _huge_header(tmp_path)
    ws = tmp_path / "ws"
    proc = run_cli("run", str(data), "--target", "label", "--name", JOB, workspace=ws)
    line = assert_one_line_error(proc, "'label'", "not a column", "xxx..., other")
    assert len(line) < 400, len(line)
    assert_nothing_written(ws)


def test_missing_target_option_is_one_line(tmp_path: Path) -> None:
    """Typer's usage errors (a box of four lines) come out as one line too."""
    ws = tmp_path / "ws"
    proc = run_cli("run", str(_good(tmp_path)), "--name", JOB, workspace=ws)
    assert_one_line_error(proc, "missing option", "--target", "--help")
    assert_nothing_written(ws)


def test_latin1_csv_is_read_as_cp1252_with_a_warning(tmp_path: Path) -> None:
    """Not bad input: a Windows-1252 CSV (Excel's "CSV" on Windows) is read, and a
    warning says which encoding was used and how to change it."""
    path = tmp_path / "latin1.csv"
    _frame().assign(city=["Zürich", "Québec", "Besançon"] * 20).to_csv(
        path, index=False, encoding="cp1252")
    ws = tmp_path / "ws"
    proc = run_cli("run", str(path), "--target", "label", "--name", JOB, "--time-limit", "30",
                   "--generate-candidates-only", "--json", workspace=ws)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "not UTF-8" in proc.stderr and "cp1252" in proc.stderr
    assert "save it as UTF-8" in proc.stderr
    assert json.loads(proc.stdout)["AutoMLJobStatus"] == "Completed"
    analysis = (ws / "jobs" / JOB / "data_exploration.json").read_text()
    assert "Zürich" in json.dumps(json.loads(analysis), ensure_ascii=False)


def test_directory_given_as_the_table_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.csv"
    folder.mkdir()
    ws = tmp_path / "ws"
    proc = run_cli("run", str(folder), "--target", "label", "--name", JOB, workspace=ws)
    assert_one_line_error(proc, "a-folder.csv", "folder")
    assert_nothing_written(ws)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root reads a chmod 000 file anyway")
def test_unreadable_file_is_rejected(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    unreadable = _good(tmp_path).rename(tmp_path / "unreadable.csv")
    unreadable.chmod(0)
    try:
        proc = run_cli("run", str(unreadable), "--target", "label", "--name", JOB,
                       workspace=ws)
    finally:
        unreadable.chmod(0o644)
    assert_one_line_error(proc, "unreadable.csv", "permission denied")
    assert_nothing_written(ws)


def test_no_job_is_listed_after_bad_input(tmp_path: Path) -> None:
    """`tabpilot list --json` in the workspace shows no job after a rejected run."""
    ws = tmp_path / "ws"
    proc = run_cli("run", str(_single_class(tmp_path)), "--target", "label", "--name", JOB,
                   workspace=ws)
    assert_one_line_error(proc, "single")
    listed = run_cli("list", "--json", workspace=ws)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == {"AutoMLJobSummaries": []}
    assert_nothing_written(ws)  # listing a workspace that does not exist creates none


@pytest.mark.slow  # 18 s: two real jobs; name checks stay fast in tests/test_names.py
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
    assert_nothing_written(ws)


def test_predict_with_unknown_job_exits_2_with_one_line(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    rows = tmp_path / "x.csv"
    _frame(5).drop(columns="label").to_csv(rows, index=False)
    out = tmp_path / "y.csv"
    proc = run_cli("predict", "NOPE", str(rows), "-o", str(out), workspace=ws, cwd=tmp_path)
    assert_one_line_error(proc, "'NOPE'", "no job")
    assert not out.exists()
    assert_nothing_written(ws)


# -- names: every job, candidate and endpoint name becomes a path part, so each is checked
NAME_CASES = [
    pytest.param(["describe", "a/b"], ["job name", "'a/b'", "invalid"], id="describe-slash"),
    pytest.param(["describe", ".."], ["job name", "'..'", "invalid"], id="describe-dotdot"),
    pytest.param(["candidates", "../x"], ["job name", "'../x'"], id="candidates-dotdot"),
    pytest.param(["stop", "a/b"], ["job name", "'a/b'"], id="stop-slash"),
    pytest.param(["report", "a/b"], ["job name", "'a/b'"], id="report-job-slash"),
    pytest.param(["report", "demo", "--candidate", "../x"], ["candidate name", "'../x'"],
                 id="report-candidate-dotdot"),
    pytest.param(["export", "demo", "--candidate", "a/b", "-o", "{out}"],
                 ["candidate name", "'a/b'"], id="export-candidate-slash"),
    pytest.param(["predict", "../nope", "{rows}", "-o", "{out}"],
                 ["job name", "'../nope'", "model directory"], id="predict-job-dotdot"),
    pytest.param(["predict", "demo", "{rows}", "-o", "{out}", "--candidate", ".."],
                 ["candidate name", "'..'"], id="predict-candidate-dotdot"),
    # `..` is a folder: read as a model directory's path, it has no model in it
    pytest.param(["predict", "..", "{rows}", "-o", "{out}"], ["'..'", "folder", "manifest"],
                 id="predict-folder-without-model"),
    pytest.param(["deploy", "demo", "--endpoint", "a/b"], ["endpoint name", "'a/b'"],
                 id="deploy-endpoint-slash"),
    pytest.param(["deploy", "demo", "--endpoint", ".."], ["endpoint name", "'..'"],
                 id="deploy-endpoint-dotdot"),
    pytest.param(["deploy", "demo", "--endpoint", "ep", "--candidate", "a/b"],
                 ["candidate name", "'a/b'"], id="deploy-candidate-slash"),
    pytest.param(["deploy", "x/y", "--endpoint", "ep"], ["job name", "'x/y'"],
                 id="deploy-job-slash"),
    pytest.param(["undeploy", "../ep"], ["endpoint name", "'../ep'"], id="undeploy-dotdot"),
    pytest.param(["transform", "a/b", "{rows}", "-o", "{out}"], ["job name", "'a/b'"],
                 id="transform-job-slash"),
    pytest.param(["transform", "demo", "{rows}", "-o", "{out}", "--candidate", "../x"],
                 ["candidate name", "'../x'"], id="transform-candidate-dotdot"),
]


@pytest.mark.parametrize(("args", "keywords"), NAME_CASES)
def test_bad_names_are_refused_before_any_lookup(tmp_path: Path, args: list[str],
                                                  keywords: list[str]) -> None:
    rows = tmp_path / "rows.csv"
    _frame(5).drop(columns="label").to_csv(rows, index=False)
    out = tmp_path / "out" / "result.csv"
    filled = [a.format(rows=rows, out=out) for a in args]
    ws = tmp_path / "ws"
    proc = run_cli(*filled, workspace=ws, cwd=tmp_path)
    assert_one_line_error(proc, *keywords)
    assert proc.stdout.strip() == ""
    assert not out.parent.exists()
    assert_nothing_written(ws)
